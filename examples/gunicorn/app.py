"""A small WSGI application instrumented with spectator_shm.

Run it under gunicorn or uWSGI (see README.md). The meters are created when
the module is imported: in the master with gunicorn --preload or uWSGI
without lazy-apps (the workers inherit them across fork()), in each worker
otherwise. Either way every worker updates the same segment,
env SPECTATOR_SEGMENT (default "spectator"), and one spectator-collector
publishes the whole server's series.

Routes:
  /            200 "ok\n"
  /sleep?ms=N  200 "ok\n" after N milliseconds (N <= 10000), for in-flight requests
  anything else 404

Every request is recorded before its response is returned to the server:
a request the worker dies on after recording it is counted without having
been answered, never the other way round.
"""

import time
from urllib.parse import parse_qs

from spectator_shm import GlobalRegistry

_STATUS_LINES = {200: "200 OK", 404: "404 Not Found"}

# Meters for both statuses exist up front, so that a first 404 in a worker
# costs no registration. Each is a handle: incrementing it is one atomic add.
_REQUESTS = {status: GlobalRegistry.counter("server.requestCount", {"status": str(status)})
             for status in _STATUS_LINES}
_LATENCY = GlobalRegistry.timer("server.requestLatency")
_RESPONSE_SIZE = GlobalRegistry.distribution_summary("server.responseSize")
_LATENCY_PERCENTILES = GlobalRegistry.pct_timer("server.requestLatencyPercentiles",
                                                min=0.0001, max=10.0)


def _handle(environ):
    path = environ.get("PATH_INFO", "/")
    if path == "/":
        return 200, b"ok\n"
    if path == "/sleep":
        query = parse_qs(environ.get("QUERY_STRING", ""))
        try:
            ms = min(max(int(query.get("ms", ["0"])[0]), 0), 10_000)
        except ValueError:
            ms = 0
        time.sleep(ms / 1000.0)
        return 200, b"ok\n"
    return 404, b"not found\n"


def application(environ, start_response):
    start = time.perf_counter()
    status, body = _handle(environ)
    elapsed = time.perf_counter() - start
    # Recorded here, before the server writes the response.
    _REQUESTS[status].increment()
    _LATENCY.record(elapsed)
    _LATENCY_PERCENTILES.record(elapsed)
    _RESPONSE_SIZE.record(len(body))
    start_response(_STATUS_LINES[status], [("Content-Type", "text/plain"),
                                           ("Content-Length", str(len(body)))])
    return [body]
