"""Conformance with the classic Spectator client, through Python: percentile
buckets follow Spectator's PercentileBuckets.indexOf, and an age gauge
starts at its first registration in the segment (not at every worker's)."""

import os
import time

from spectator_shm import Registry


def key(name, **tags):
    return (name, frozenset(tags.items()))


def buckets_of(measurements, name):
    out = {}
    for (n, tags), value in measurements.items():
        tags = dict(tags)
        if n == name and tags.get("statistic") == "percentile":
            out[tags["percentile"]] = value
    return out


def test_percentile_distribution_summary_buckets_match_spectator(segment, collect_once):
    d = Registry(segment).pct_distribution_summary("sizes")
    for v in (0, 1, 5, 100, 12345, 10**9):
        d.record(v)
    got = collect_once(segment)
    assert buckets_of(got, "sizes") == {
        "D0000": 1, "D0001": 1, "D0005": 1, "D0019": 1, "D0039": 1, "D0083": 1}
    assert got[key("sizes", statistic="count")] == 6
    assert got[key("sizes", statistic="totalAmount")] == 1000012451
    assert got[key("sizes", statistic="max")] == 10**9


def test_percentile_timer_buckets_match_spectator(segment, collect_once):
    t = Registry(segment).pct_timer("latency")  # default range 10 ms .. 60 s
    for seconds in (0.001, 0.012, 0.25, 0.25, 1.7, 75.0):
        t.record(seconds)
    got = collect_once(segment)
    assert buckets_of(got, "latency") == {
        "T0064": 1, "T0065": 1, "T007A": 2, "T0085": 1, "T009D": 1}
    assert got[key("latency", statistic="count")] == 6
    assert got[key("latency", statistic="max")] == 75


def _register_in_child(segment):
    pid = os.fork()
    if pid == 0:
        try:
            g = Registry(segment).age_gauge("job.lastSuccess", {"id": "refresh"})
            os._exit(0 if g is not None else 1)
        except BaseException:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)


def test_age_gauge_starts_at_its_first_registration_not_at_each_workers(segment, collect_once):
    Registry(segment)  # the master opens the segment; workers register the gauge
    first_before = time.time()
    assert _register_in_child(segment) == 0
    first_after = time.time()
    while time.time() < first_after + 0.5:  # the next worker comes measurably later
        pass
    assert _register_in_child(segment) == 0  # a recycled worker asks again
    got = collect_once(segment)
    now = time.time()
    age = got[key("job.lastSuccess", id="refresh", statistic="gauge")]
    assert age >= 0.5, "a later registration reset the gauge"
    assert age <= now - first_before + 0.01


def test_global_registry_on_a_dev_shm_too_small_logs_and_gives_no_op_meters():
    """Docker's small /dev/shm: the default segment does not fit. The app must
    not crash (no SIGBUS, no exception): GlobalRegistry logs once and hands out
    no-op meters. Runs under unshare(1) with a 4 MiB tmpfs on /dev/shm."""
    import shutil
    import subprocess
    import sys

    import pytest

    unshare = shutil.which("unshare") or "/usr/bin/unshare"
    if subprocess.run([unshare, "-m", "/bin/true"], capture_output=True).returncode != 0:
        pytest.skip("needs root and unshare -m to mount a small /dev/shm")
    program = (
        "import logging, sys\n"
        "logging.basicConfig(stream=sys.stderr, format='%(name)s %(levelname)s %(message)s')\n"
        "from spectator_shm import GlobalRegistry\n"
        "c = GlobalRegistry.counter('server.numRequests', {'statusCode': '200'})\n"
        "for _ in range(3): c.increment()\n"
        "GlobalRegistry.timer('t').record(0.1)\n"
        "print('still running')\n"
    )
    proc = subprocess.run(
        [unshare, "-m", "--propagation", "private", "/bin/sh", "-c",
         'mount -t tmpfs -o size=4m tmpfs /dev/shm && exec "$0" -c "$1"', sys.executable,
         program],
        capture_output=True, text=True, timeout=60,
        env={**os.environ, "SPECTATOR_SEGMENT": "too-big-for-dev-shm"})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "still running\n"
    errors = [line for line in proc.stderr.splitlines() if line.startswith("spectator_shm")]
    assert len(errors) == 1, proc.stderr
    assert "too-big-for-dev-shm" in errors[0] and "/dev/shm has only" in errors[0], errors[0]
