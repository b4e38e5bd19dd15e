"""Real gunicorn (Debian's, sync workers) running examples/gunicorn/app.py,
the real spectator-collector publishing to a fake Atlas: every request the
test saw answered 200 is published exactly once, across worker recycling
(--max-requests), with and without --preload, and across SIGKILLed workers.

The order of the stop matters: gunicorn first (SIGTERM, exit 0: every worker
has finished), then the collector (SIGTERM: its last step publishes what
the workers recorded until the end). Only then are the totals final.
"""

import os
import signal

import pytest

import spectator_shm  # noqa: F401 (a build without the package fails here, it does not skip)
from helpers import wait_until
from servers import (assert_exactly, assert_kills_cost_only_unanswered, gunicorn,
                     kill_workers_under_load, process_gone, send_across_a_step,
                     send_requests)

N = 1000
CLIENTS = 4


@pytest.mark.parametrize("preload, threads", [(True, 1), (False, 1), (True, 4)],
                         ids=["preload", "no_preload", "gthread_preload"])
def test_every_answered_request_is_published_exactly_once(preload, threads, segment,
                                                          fake_atlas, run_collector, tmp_path):
    """4 workers recycled every 50 requests; sync workers, or gthread workers
    whose 4 threads share each process's meters."""
    args = ["--workers", "4", "--max-requests", "50", "--max-requests-jitter", "0"]
    args += ["--preload"] if preload else []
    args += ["--worker-class", "gthread", "--threads", str(threads)] if threads > 1 else []
    with run_collector(segment, fake_atlas.url, step=0.1):
        with gunicorn(segment, tmp_path / "gunicorn.log", args) as server:
            ok, failed = send_across_a_step(server, fake_atlas, N, CLIENTS)
        log = server.log()
    print("preload=%s threads=%d: %d answered 200, %d failed" % (preload, threads, ok, failed))
    assert (ok, failed) == (N, 0)
    assert_exactly(fake_atlas, N)
    # Each worker is replaced after 50 requests: 1000 requests by 4 workers
    # are at least 16 replacements (gunicorn logs each one at info level).
    restarts = log.count("Autorestarting worker after current request")
    print("worker restarts: %d" % restarts)
    assert restarts >= 16, log[-3000:]


def test_collector_restart_in_the_middle_loses_nothing(segment, fake_atlas, run_collector,
                                                       tmp_path):
    """A first collector publishes part of the load and is stopped; the rest
    is served with no collector running (it stays in the segment) and is
    published by a second collector."""
    with gunicorn(segment, tmp_path / "gunicorn.log",
                  ["--workers", "4", "--preload", "--max-requests", "50"]) as server:
        with run_collector(segment, fake_atlas.url, step=0.1):
            first = send_requests(server.port, 400, CLIENTS)
        between = send_requests(server.port, 300, CLIENTS)
        with run_collector(segment, fake_atlas.url, step=0.1):
            # Every answer has gone out before this collector's final step,
            # so that step publishes all of it, gunicorn still running.
            last = send_requests(server.port, 300, CLIENTS)
    ok = first.ok + between.ok + last.ok
    print("%d answered 200 (400 + 300 with no collector + 300)" % ok)
    assert ok == 1000
    assert_exactly(fake_atlas, 1000)


def test_sigkilled_workers_lose_no_answered_request(segment, fake_atlas, run_collector,
                                                    tmp_path):
    """Three workers are SIGKILLed while the other clients keep requests in
    flight; gunicorn replaces them. The app counts a request just before
    returning its response, so the published count is bounded by
        answered 200  <=  published  <=  answered 200 + failed
    (a failed request is counted iff its worker died after counting it and
    before the answer went out), and a sync worker holds one request at a
    time, so at most one request fails per kill. The timer is recorded right
    after the counter: answered <= timed <= published."""
    total = 2000
    with run_collector(segment, fake_atlas.url, step=0.1):
        with gunicorn(segment, tmp_path / "gunicorn.log",
                      ["--workers", "4", "--preload"]) as server:
            result, kills = kill_workers_under_load(server, 4, total, CLIENTS,
                                                    "gunicorn")
        log = server.log()
    assert_kills_cost_only_unanswered(fake_atlas, result, kills, total)
    for pid in kills:  # gunicorn saw each death (and the wait above, its replacement)
        assert "Worker with pid %d was terminated due to signal 9" % pid in log, log[-3000:]


@pytest.mark.parametrize("preload", [True, False], ids=["preload", "no_preload"])
def test_config_hook_starts_a_collector_that_outlives_gunicorn(preload, segment, fake_atlas,
                                                               collector_bin, collector_pid,
                                                               tmp_path):
    """SPECTATOR_START_COLLECTOR=1: gunicorn.conf.py's when_ready hook starts
    a collector for the segment (publishing to SPECTATOR_URI); it keeps
    running after gunicorn stops and publishes everything on SIGTERM. Without
    --preload the segment does not exist yet when the hook runs."""
    env = {"SPECTATOR_START_COLLECTOR": "1", "SPECTATOR_COLLECTOR": collector_bin,
           "SPECTATOR_URI": fake_atlas.url}
    args = ["--workers", "2", "--max-requests", "50"] + (["--preload"] if preload else [])
    pid = 0
    try:
        with gunicorn(segment, tmp_path / "gunicorn.log", args, env) as server:
            pid = wait_until(lambda: collector_pid(segment), 30,
                             "the hook's collector to open the segment")
            result = send_requests(server.port, 300, CLIENTS)
        log = server.log()
        assert "started spectator-collector (pid %d)" % pid in log, log[-3000:]
        assert not process_gone(pid), "the collector stopped with gunicorn"
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: process_gone(pid), 30, "the collector to exit after SIGTERM")
    finally:
        if pid and not process_gone(pid):
            os.kill(pid, signal.SIGKILL)
    print("%d answered 200" % result.ok)
    assert (result.ok, result.failed) == (300, 0)
    assert_exactly(fake_atlas, 300)


def test_config_hook_does_not_start_a_second_collector(segment, fake_atlas, run_collector,
                                                       collector_bin, tmp_path):
    env = {"SPECTATOR_START_COLLECTOR": "1", "SPECTATOR_COLLECTOR": collector_bin,
           "SPECTATOR_URI": fake_atlas.url}
    with run_collector(segment, fake_atlas.url, step=0.1):
        with gunicorn(segment, tmp_path / "gunicorn.log", ["--workers", "1"], env) as server:
            wait_until(lambda: "spectator-collector already runs" in server.log(), 30,
                       "the hook to find the running collector")
            result = send_requests(server.port, 10, 1)
        assert "started spectator-collector" not in server.log()
    assert result.ok == 10
    assert_exactly(fake_atlas, 10)
