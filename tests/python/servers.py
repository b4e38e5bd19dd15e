"""Real servers for the tests: gunicorn and uWSGI running
examples/gunicorn/app.py, an HTTP load generator, and /proc helpers.

Every server runs in its own session (process group), so that whatever a
test leaves behind (a master that hung, workers it orphaned) is SIGKILLed by
process group id when the context manager exits.
"""

import concurrent.futures
import contextlib
import http.client
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest

from helpers import kill_group, read_file, stop_process, wait_until

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLE_DIR = os.path.join(REPO, "examples", "gunicorn")
GUNICORN_CONF = os.path.join(EXAMPLE_DIR, "gunicorn.conf.py")
UWSGI_INI = os.path.join(EXAMPLE_DIR, "uwsgi.ini")
UWSGI = "/usr/bin/uwsgi"

START_TIMEOUT = 60.0  # loaded CI machines import slowly
STOP_TIMEOUT = 60.0


def http_get(port, path="/", timeout=30.0):
    """One GET on a fresh connection. Returns (status, body); status 0 when
    the connection failed before a whole response arrived."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Connection": "close"})
        response = conn.getresponse()
        return response.status, response.read()
    except (OSError, http.client.HTTPException):
        return 0, b""
    finally:
        conn.close()


class LoadResult:
    def __init__(self):
        self.lock = threading.Lock()
        self.ok = 0  # answered 200 with the expected body
        self.failed = 0  # anything else, connection errors included
        self.not_sent = 0  # left when the deadline passed
        self.statuses = {}

    def add(self, status, body):
        with self.lock:
            if status == 200 and body == b"ok\n":
                self.ok += 1
            else:
                self.failed += 1
            self.statuses[status] = self.statuses.get(status, 0) + 1

    def __repr__(self):
        return "LoadResult(ok=%d, failed=%d, not_sent=%d, statuses=%r)" % (
            self.ok, self.failed, self.not_sent, self.statuses)


def send_requests(port, total, clients=4, path="/", on_request=None, deadline=120.0):
    """Sends `total` GETs from `clients` threads (no retries: each attempt is
    one request). on_request(i), if given, runs in the sending thread after
    request i (0-based, numbered in the order they are started) completed.
    `path` is a string or path(i). Requests not started within `deadline`
    seconds are not sent (counted in not_sent), so a hung server fails the
    test instead of holding it for total x 30 s. Returns a LoadResult."""
    result = LoadResult()
    counter = iter(range(total))
    counter_lock = threading.Lock()
    end = time.monotonic() + deadline

    def next_index():
        with counter_lock:
            i = next(counter, None)
            if i is not None and time.monotonic() > end:
                result.not_sent = total - i
                for _ in counter:  # the other threads stop too
                    pass
                return None
            return i

    def client():
        while True:
            i = next_index()
            if i is None:
                return
            status, body = http_get(port, path(i) if callable(path) else path)
            result.add(status, body)
            if on_request is not None:
                on_request(i)

    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        for f in [pool.submit(client) for _ in range(clients)]:
            f.result()
    return result


# What app.py publishes, from a FakeAtlas.
def publish_summary(atlas):
    """The totals of app.py's meters, for assertions and for printing."""
    return {
        "requestCount{status=200}": atlas.sum("server.requestCount", status="200"),
        "requestLatency count": atlas.sum("server.requestLatency"),
        "requestLatencyPercentiles count": atlas.sum("server.requestLatencyPercentiles"),
        "requestLatencyPercentiles buckets": atlas.sum("server.requestLatencyPercentiles",
                                                       statistic="percentile"),
        "responseSize count": atlas.sum("server.responseSize"),
        "responseSize totalAmount": atlas.sum("server.responseSize", statistic="totalAmount"),
        "payloads": atlas.request_count,
    }


def assert_exactly(atlas, n):
    """Every meter of app.py recorded exactly n answered "/" requests."""
    got = publish_summary(atlas)
    print("published: %r" % got)
    assert got["requestCount{status=200}"] == n
    assert got["requestLatency count"] == n
    assert got["requestLatencyPercentiles count"] == n
    assert got["requestLatencyPercentiles buckets"] == n  # one bucket per record
    assert got["responseSize count"] == n
    assert got["responseSize totalAmount"] == 3 * n  # "ok\n"
    assert atlas.sum("server.requestCount", status="404") == 0


def send_across_a_step(server, atlas, n, clients):
    """Sends half of `n` requests, waits until a regular step has published
    one, then sends the other half (published by the collector's last step):
    exactness across steps, not only within one. Returns (answered, failed)."""
    first = send_requests(server.port, n // 2, clients)
    assert atlas.wait_for(lambda a: a.sum("server.requestCount", status="200") > 0, timeout=30), \
        "no step published a request within 30 s"
    second = send_requests(server.port, n - n // 2, clients)
    return first.ok + second.ok, first.failed + second.failed


def kill_workers_under_load(server, workers, total, clients, what):
    """Sends `total` requests while SIGKILLing three of `server`'s workers (on
    the requests numbered 300, 600 and 900, whichever thread completes them),
    waits for the victims to exit and `what` (the server) to be back at
    `workers` workers,
    and checks what a kill may cost. The app counts a request just before
    returning its response and each worker holds one request at a time, so
        answered 200  <=  published  <=  answered 200 + failed,  failed <= kills
    and the timer, recorded right after the counter: answered <= timed <=
    published. Returns the pids killed."""
    kills = []

    def maybe_kill(i):
        if i in (300, 600, 900) and len(kills) < 3:
            running = sorted(server.workers())
            if running:
                victim = running[i // 300 % len(running)]
                os.kill(victim, signal.SIGKILL)
                kills.append(victim)

    result = send_requests(server.port, total, clients, path="/sleep?ms=2", on_request=maybe_kill)
    wait_until(lambda: all(process_gone(pid) for pid in kills), 30, "the victims to exit")
    wait_until(lambda: len(server.workers()) == workers, 30, what + " to respawn its workers")
    return result, kills


def assert_kills_cost_only_unanswered(atlas, result, kills, total):
    published = atlas.sum("server.requestCount", status="200")
    timed = atlas.sum("server.requestLatency")
    print("%d answered 200, %d failed, %g published, %g timed, %d workers killed: %r"
          % (result.ok, result.failed, published, timed, len(kills), result))
    assert len(kills) == 3
    assert result.ok + result.failed == total
    assert result.failed <= len(kills)
    assert result.ok <= published <= result.ok + result.failed
    assert result.ok <= timed <= published


def children_of(parent):
    """Live (not zombie) children of `parent`, from /proc."""
    children = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry) as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) S ppid ...": the comm may contain spaces and parentheses.
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) >= 2 and fields[0] != "Z" and int(fields[1]) == parent:
            children.append(int(entry))
    return children


def process_gone(pid):
    """True when pid does not exist or is a zombie (exited, not reaped)."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return True
    return stat[stat.rfind(")") + 2:].split()[0] == "Z"


class Server:
    """A server process and what it said: `port`, `proc`, `log()`."""

    def __init__(self, proc, log_path):
        self.proc = proc
        self.log_path = log_path
        self.port = 0

    @property
    def pid(self):
        return self.proc.pid

    def log(self):
        return read_file(self.log_path)

    def workers(self):
        return children_of(self.proc.pid)


def _server_env(segment, extra):
    env = dict(os.environ)
    env["SPECTATOR_SEGMENT"] = segment
    env.update(extra or {})
    return env


@contextlib.contextmanager
def _run(argv, env, log_path, port_pattern, stop_signal, name):
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(argv, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True,
                                cwd=EXAMPLE_DIR)
    server = Server(proc, log_path)
    stopped = False
    try:
        def port():
            if proc.poll() is not None:
                pytest.fail("%s exited %d at start:\n%s" % (name, proc.returncode, server.log()))
            m = re.search(port_pattern, server.log())
            return int(m.group(1)) if m else 0

        server.port = wait_until(port, START_TIMEOUT, "%s to listen" % name)
        yield server
        server.stop_code = stop_process(proc, stop_signal, STOP_TIMEOUT)
        stopped = True
        assert server.stop_code == 0, "%s exited %r after %s:\n%s" % (
            name, server.stop_code, signal.Signals(stop_signal).name, server.log()[-5000:])
    finally:
        if not stopped:
            stop_process(proc, stop_signal, STOP_TIMEOUT)
        kill_group(proc)  # workers an exiting master left behind


def gunicorn(segment, log_path, args=(), env=None):
    """Runs `python3 -m gunicorn -c examples/gunicorn/gunicorn.conf.py
    --bind 127.0.0.1:0 ARGS` with SPECTATOR_SEGMENT=segment; yields a Server
    once gunicorn says where it listens. On exit: SIGTERM (graceful: workers
    finish their requests), and the master must exit 0."""
    argv = [sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONF,
            "--bind", "127.0.0.1:0", *args]
    return _run(argv, _server_env(segment, env), log_path,
                r"Listening at: http://127\.0\.0\.1:(\d+)", signal.SIGTERM, "gunicorn")


def uwsgi(segment, log_path, args=(), env=None):
    """Runs `uwsgi --ini examples/gunicorn/uwsgi.ini --http-socket
    127.0.0.1:0 ARGS` (port auto-assigned); yields a Server once uWSGI says
    which port it got. On exit: SIGTERM (the ini has die-on-term), exit 0."""
    # worker-reload-mercy: a lazy-apps worker that gets the stop signal while
    # it is still loading the app (forked, signal handlers not yet its own)
    # does not exit; the master SIGKILLs it after this many seconds (default
    # 60, longer than the test waits).
    argv = [UWSGI, "--ini", UWSGI_INI, "--http-socket", "127.0.0.1:0",
            "--worker-reload-mercy", "10", *args]
    return _run(argv, _server_env(segment, env), log_path,
                r"bound to TCP address 127\.0\.0\.1:(\d+) \(port auto-assigned\)",
                signal.SIGTERM, "uwsgi")
