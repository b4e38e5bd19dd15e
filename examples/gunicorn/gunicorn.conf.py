"""gunicorn configuration for examples/gunicorn/app.py.

    SPECTATOR_SEGMENT=myapp gunicorn -c examples/gunicorn/gunicorn.conf.py --preload

Command-line flags override these settings (--bind, --workers,
--max-requests, ...). `--preload` is optional: with it the master imports
app.py and creates the meters once, and the workers inherit them; without
it each worker imports app.py and opens the segment itself. Both publish the
same totals.

Starting the collector (optional): with SPECTATOR_START_COLLECTOR=1, the
`when_ready` hook below starts `spectator-collector --segment $SPECTATOR_SEGMENT`
unless one already runs on the segment (the collector holds an exclusive
flock on /dev/shm/<segment> while it runs). The binary is env
SPECTATOR_COLLECTOR, else the one spectator_shm.collector_path() finds
(bundled with a pip install, else on PATH). The collector reads the Atlas
URI from SPECTATOR_URI (without one it prints to stdout) and common tags
from NETFLIX_* like any other start. It runs in its own session and is
deliberately not stopped with gunicorn: a collector must outlive worker
crashes and server restarts, and a restarted gunicorn finds it running. Stop
it with SIGTERM (it publishes once more, then exits 0). Prefer a service
manager (docs/collector.md, "Running it") where there is one.
"""

import errno
import fcntl
import os
import subprocess

_HERE = os.path.dirname(os.path.abspath(__file__))

wsgi_app = "app:application"
pythonpath = _HERE
bind = "127.0.0.1:8000"
workers = 4
max_requests = 1000
max_requests_jitter = 100


def _segment():
    return os.environ.get("SPECTATOR_SEGMENT") or "spectator"


def _collector_running(segment):
    """True when a process holds the collector's flock on /dev/shm/<segment>."""
    try:
        fd = os.open(os.path.join("/dev/shm", segment), os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False  # no segment yet: no collector either (it would have created it)
    try:
        # A shared lock conflicts only with the collector's exclusive one; it
        # is held for two system calls.
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except OSError as e:
        if e.errno in (errno.EWOULDBLOCK, errno.EAGAIN):
            return True
        raise
    finally:
        os.close(fd)


def _collector_binary():
    path = os.environ.get("SPECTATOR_COLLECTOR")
    if path:
        return path
    try:
        from spectator_shm import collector_path
    except ImportError:
        return None
    return collector_path()


def when_ready(server):
    if os.environ.get("SPECTATOR_START_COLLECTOR", "").lower() not in ("1", "true", "yes"):
        return
    segment = _segment()
    if _collector_running(segment):
        server.log.info("spectator-collector already runs on segment %s", segment)
        return
    binary = _collector_binary()
    if binary is None:
        server.log.warning("SPECTATOR_START_COLLECTOR is set but no spectator-collector was "
                           "found (set SPECTATOR_COLLECTOR or put it on PATH)")
        return
    try:
        proc = subprocess.Popen([binary, "--segment", segment], stdin=subprocess.DEVNULL,
                                start_new_session=True, close_fds=True)
    except OSError as e:
        server.log.warning("cannot start %s: %s", binary, e)
        return
    server.log.info("started spectator-collector (pid %d) on segment %s", proc.pid, segment)
