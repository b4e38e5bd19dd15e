"""Fixtures shared by the Python tests (tests/python/CMakeLists.txt runs
each test_*.py with PYTHONPATH=<build>/python and SPECTATOR_COLLECTOR set).

- segment: a fresh segment name per test, /dev/shm/NAME removed before and after
- collector_bin: the spectator-collector binary (env SPECTATOR_COLLECTOR), or skip
- collect_once: collect_once(segment) -> {(name, frozenset(tags.items())): value}
- fake_atlas: a FakeAtlas (fake_atlas.py) serving on 127.0.0.1, stopped after the test
- run_collector: with run_collector(segment, uri, step=0.1) as proc: ... runs the
  real collector; on exit SIGTERM (one final publish) and asserts exit 0

Everything waits by polling against a deadline; nothing sleeps to synchronise.
"""

import contextlib
import itertools
import os
import re
import signal
import subprocess

import pytest

from fake_atlas import FakeAtlas
from helpers import read_file, stop_process, wait_until

_counter = itertools.count()

# How long a collector may take to start, and to finish after SIGTERM (its
# last step includes a publish with up to --timeout per attempt).
COLLECTOR_START_TIMEOUT = 20.0
COLLECTOR_STOP_TIMEOUT = 30.0


def _remove_segment(name):
    try:
        os.unlink(os.path.join("/dev/shm", name))
    except FileNotFoundError:
        pass


@pytest.fixture
def segment(request):
    """A unique segment name: spectator-pytest-<pid>-<n>-<testname>."""
    test = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)[:80]
    name = "spectator-pytest-%d-%d-%s" % (os.getpid(), next(_counter), test)
    _remove_segment(name)
    try:
        yield name
    finally:
        _remove_segment(name)


@pytest.fixture
def collector_bin():
    path = os.environ.get("SPECTATOR_COLLECTOR")
    if not path:
        pytest.skip("SPECTATOR_COLLECTOR is not set (the build has no spectator-collector)")
    if not os.access(path, os.X_OK):
        pytest.fail("SPECTATOR_COLLECTOR=%s is not an executable" % path)
    return path


# "name{k=v,k=v} value": tags sorted by key, statistic among them.
_LINE = re.compile(r"^([^{}\s]+)\{([^{}]*)\} (\S+)$")


def parse_collector_stdout(text):
    """The collector's stdout sink lines -> {(name, frozenset(tags.items())): value}."""
    out = {}
    for line in text.splitlines():
        if not line:
            continue
        m = _LINE.match(line)
        assert m, "unexpected collector output line: %r" % line
        name, tag_text, value = m.groups()
        tags = {}
        for pair in tag_text.split(","):
            key, sep, val = pair.partition("=")
            assert sep and key not in tags, "bad tags in %r" % line
            tags[key] = val
        key = (name, frozenset(tags.items()))
        assert key not in out, "measurement printed twice: %r" % line
        out[key] = float(value)
    return out


@pytest.fixture
def collect_once(collector_bin):
    """collect_once(segment, *extra_args): runs `collector --segment S --once`,
    asserts exit 0, returns its measurements (taking, i.e. resetting, them)."""

    def run(segment, *extra_args):
        proc = subprocess.run([collector_bin, "--segment", segment, "--once", *extra_args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              timeout=60)
        assert proc.returncode == 0, "spectator-collector --once exited %d: %s" % (
            proc.returncode, proc.stderr)
        return parse_collector_stdout(proc.stdout)

    return run


@pytest.fixture
def fake_atlas():
    atlas = FakeAtlas().start()
    try:
        yield atlas
    finally:
        atlas.stop()
    assert not atlas.errors, "the fake Atlas received bad payloads: %s" % atlas.errors


@pytest.fixture
def run_collector(collector_bin, tmp_path):
    """run_collector(segment, uri, step=0.1, *extra_args): a context manager
    running `spectator-collector --segment S --uri U --step STEP`. It returns
    once the collector has the segment open; on exit it sends SIGTERM (the
    collector publishes once more) and asserts exit 0. The collector's stderr
    is in proc.stderr_path."""
    started = []

    @contextlib.contextmanager
    def run(segment, uri, step=0.1, *extra_args):
        n = len(started)
        stderr_path = tmp_path / ("collector-%d.stderr" % n)
        stdout_path = tmp_path / ("collector-%d.stdout" % n)
        with open(stderr_path, "wb") as err, open(stdout_path, "wb") as out:
            proc = subprocess.Popen(
                [collector_bin, "--segment", segment, "--uri", uri, "--step", str(step),
                 *extra_args],
                stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        proc.stderr_path = stderr_path
        started.append(proc)
        try:
            # Started: the collector creates the segment if nobody did, and
            # records its pid in the header; --dump shows it.
            wait_until(lambda: proc.poll() is not None or
                       _collector_pid(collector_bin, segment) == proc.pid,
                       COLLECTOR_START_TIMEOUT, "the collector to open %s" % segment)
            assert proc.poll() is None, "spectator-collector exited %d at start: %s" % (
                proc.returncode, read_file(stderr_path))
            yield proc
        except BaseException:
            stop_process(proc, timeout=COLLECTOR_STOP_TIMEOUT)
            raise
        rc = stop_process(proc, timeout=COLLECTOR_STOP_TIMEOUT)
        assert rc == 0, "spectator-collector exited %r after SIGTERM: %s" % (
            rc, read_file(stderr_path))

    try:
        yield run
    finally:
        for proc in started:  # a test that left one running by mistake
            stop_process(proc, sig=signal.SIGKILL, timeout=10)


_PID = re.compile(r"collector pid (\d+)")


def _collector_pid(collector_bin, segment):
    """The pid of the collector recorded in the segment header, 0 if none."""
    if not os.path.exists(os.path.join("/dev/shm", segment)):
        return 0
    proc = subprocess.run([collector_bin, "--segment", segment, "--dump"],
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                          timeout=30)
    m = _PID.search(proc.stdout.split("\n", 1)[0])
    return int(m.group(1)) if m else 0


@pytest.fixture
def collector_pid(collector_bin):
    """collector_pid(segment): the pid in the segment's header, 0 if none."""
    return lambda segment: _collector_pid(collector_bin, segment)
