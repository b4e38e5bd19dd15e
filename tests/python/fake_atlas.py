"""A fake Atlas publish endpoint for the Python tests.

An http.server on 127.0.0.1, port 0, serving from a thread: every POST is
gunzipped, decoded strictly (the checks of tests/support/atlas_payload.cc, so
an encoder bug fails the test instead of being summed), recorded, and
answered 200. Anything it cannot decode is answered 400 and kept in
`errors`; the `fake_atlas` fixture fails the test when there are any.
"""

import gzip
import http.server
import json
import math
import threading
import time


class PayloadError(ValueError):
    pass


def decode_payload(text):
    """Decodes `[n, s0..s(n-1), (t, t pairs, op, value)...]` into a list of
    (name, tags, op, value) with tags a dict that includes `statistic`."""
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise PayloadError("not JSON: %s: %r" % (e, text[:200])) from None
    if not isinstance(doc, list) or not doc:
        raise PayloadError("not a non-empty array")

    def count(pos, what):
        if pos >= len(doc):
            raise PayloadError("truncated: %s missing at %d" % (what, pos))
        v = doc[pos]
        if isinstance(v, bool) or not isinstance(v, int) or v < 0:
            raise PayloadError("%s at %d is not a non-negative integer: %r" % (what, pos, v))
        return v

    n = count(0, "string count")
    if n + 1 > len(doc):
        raise PayloadError("string table of %d runs past the end" % n)
    strings = doc[1:n + 1]
    for i, s in enumerate(strings):
        if not isinstance(s, str):
            raise PayloadError("string table entry %d is not a string" % i)
        if i > 0 and not strings[i - 1] < s:
            raise PayloadError("string table not sorted and unique at %d: %r then %r"
                               % (i, strings[i - 1], s))

    def lookup(pos):
        index = count(pos, "string index")
        if index >= n:
            raise PayloadError("string index %d at %d out of range (table of %d)" % (index, pos, n))
        return strings[index]

    out = []
    pos = n + 1
    while pos < len(doc):
        where = "measurement %d at %d" % (len(out), pos)
        t = count(pos, "tag count")
        pos += 1
        if t == 0:
            raise PayloadError(where + ": no tag pairs (the name pair is required)")
        if len(doc) - pos < 2 * t + 2:
            raise PayloadError(where + ": truncated (%d pairs)" % t)
        name = None
        tags = {}
        for k in range(t):
            key, value = lookup(pos), lookup(pos + 1)
            pos += 2
            last = k + 1 == t
            if key == "name":
                if not last:
                    raise PayloadError(where + ": the name pair is not last")
                name = value
            else:
                if last:
                    raise PayloadError(where + ": the last pair is %s, not name" % key)
                if key in tags:
                    raise PayloadError(where + ": tag %s repeated" % key)
                tags[key] = value
        op, value = doc[pos], doc[pos + 1]
        pos += 2
        if isinstance(op, bool) or op not in (0, 10):
            raise PayloadError(where + ": op is not 0 or 10: %r" % (op,))
        if (isinstance(value, bool) or not isinstance(value, (int, float))
                or not math.isfinite(value)):
            raise PayloadError(where + ": value is not a finite number: %r" % (value,))
        out.append((name, tags, op, float(value)))
    return out


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the collector's libcurl handle expects
    timeout = 30  # a keep-alive connection idle this long is dropped

    def do_POST(self):  # noqa: N802 (http.server's naming)
        length = int(self.headers.get("Content-Length", "0"))
        body = self.rfile.read(length)
        try:
            if self.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            measurements = decode_payload(body.decode("utf-8"))
        except Exception as e:  # anything undecodable is a test failure
            self.server.atlas._error("%s %s: %s" % (self.command, self.path, e))
            self._reply(400, b'{"message":"bad payload"}')
            return
        self.server.atlas._add(self.path, measurements)
        self._reply(200, b"{}")

    def _reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # noqa: A002 (http.server's signature)
        pass  # quiet: pytest shows failures, not every POST


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # keep-alive handler threads must not block close()


class FakeAtlas:
    """Start with start(), stop with stop() (the fixture does both)."""

    def __init__(self):
        self._lock = threading.Condition()
        self._measurements = []  # (name, tags dict, op, value), in arrival order
        self._requests = 0
        self._errors = []
        self._server = None
        self._thread = None

    def start(self):
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.atlas = self
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05},
                                        name="fake-atlas", daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(10)
            self._server = None

    @property
    def port(self):
        return self._server.server_address[1]

    @property
    def url(self):
        return "http://127.0.0.1:%d/api/v1/publish" % self.port

    # -- recording (handler threads) --

    def _add(self, path, measurements):
        with self._lock:
            self._measurements.extend(measurements)
            self._requests += 1
            self._lock.notify_all()

    def _error(self, message):
        with self._lock:
            self._errors.append(message)
            self._lock.notify_all()

    # -- queries (any thread) --

    @property
    def errors(self):
        with self._lock:
            return list(self._errors)

    @property
    def request_count(self):
        """Payloads accepted (answered 200)."""
        with self._lock:
            return self._requests

    def measurements(self):
        """A copy of every measurement received: (name, tags, op, value)."""
        with self._lock:
            return [(n, dict(t), op, v) for n, t, op, v in self._measurements]

    def totals(self):
        """{(name, frozenset(tags.items())): value}, tags including
        `statistic`: the sum of every add (op 0), the largest max (op 10)."""
        out = {}
        with self._lock:
            for name, tags, op, value in self._measurements:
                key = (name, frozenset(tags.items()))
                if op == 10:
                    out[key] = max(out.get(key, value), value)
                else:
                    out[key] = out.get(key, 0.0) + value
        return out

    def sum(self, name, statistic="count", **tags):
        """Sum of the adds of `name` with that statistic and at least `tags`
        (e.g. sum("server.requestCount", status="200"))."""
        want = dict(tags, statistic=statistic)
        total = 0.0
        with self._lock:
            for n, t, op, value in self._measurements:
                if n == name and op == 0 and all(t.get(k) == v for k, v in want.items()):
                    total += value
        return total

    def wait_for(self, predicate, timeout):
        """Waits until predicate(self) is true (checked after every payload),
        at most `timeout` seconds; returns its last result."""
        deadline = time.monotonic() + timeout
        while True:
            # predicate() takes the lock itself: evaluate it outside.
            result = predicate(self)
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return result
            with self._lock:
                self._lock.wait(min(remaining, 0.2))

    def wait_for_requests(self, n, timeout):
        """True once at least n payloads were accepted, within `timeout` s."""
        return self.wait_for(lambda a: a.request_count >= n, timeout)
