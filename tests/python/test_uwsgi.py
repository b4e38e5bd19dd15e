"""Real uWSGI (Debian's, python3 plugin) running examples/gunicorn/app.py
from examples/gunicorn/uwsgi.ini: the app loaded in the master (no
lazy-apps; its meters inherited by 4 workers recycled every 50 requests) or
in each worker (lazy-apps), workers SIGKILLed under load, and the collector
as an attach-daemon2 of the master. Every request answered 200 is
published exactly once.

Stop order as in test_gunicorn.py: uWSGI first (SIGTERM, die-on-term,
exit 0), then the collector, whose last step makes the totals final.
"""

import os
import signal

import pytest

import spectator_shm  # noqa: F401 (a build without the package fails here, it does not skip)
from helpers import wait_until
from servers import (assert_exactly, assert_kills_cost_only_unanswered,
                     kill_workers_under_load, process_gone, send_across_a_step,
                     send_requests, uwsgi)

N = 1000
CLIENTS = 4


@pytest.mark.parametrize("lazy_apps", [False, True], ids=["app_in_master", "lazy_apps"])
def test_every_answered_request_is_published_exactly_once(lazy_apps, segment, fake_atlas,
                                                          run_collector, tmp_path):
    # min-worker-lifetime: uWSGI ignores max-requests for a worker younger
    # than that (default 60 s).
    args = ["--master", "--processes", "4", "--max-requests", "50", "--min-worker-lifetime", "0"]
    args += ["--lazy-apps"] if lazy_apps else []
    with run_collector(segment, fake_atlas.url, step=0.1):
        with uwsgi(segment, tmp_path / "uwsgi.log", args) as server:
            ok, failed = send_across_a_step(server, fake_atlas, N, CLIENTS)
        log = server.log()
    print("lazy_apps=%s: %d answered 200, %d failed" % (lazy_apps, ok, failed))
    assert (ok, failed) == (N, 0)
    assert_exactly(fake_atlas, N)
    # Loaded where the test says: once in the master, or once per worker
    # (4 + at least 16 replacements).
    loads = log.count("WSGI app 0 (mountpoint='') ready")
    print("app loads: %d" % loads)
    assert (loads == 1) if not lazy_apps else (loads >= 20), log[-3000:]
    # uWSGI recycles each worker after 50 requests: 1000 requests by 4
    # workers are at least 16 recycles ("...The work of process N is done").
    recycles = log.count("The work of process")
    print("worker recycles: %d" % recycles)
    assert recycles >= 16, log[-3000:]


def test_attached_collector_publishes_everything(segment, fake_atlas, collector_bin,
                                                 collector_pid, tmp_path):
    """The collector as a uWSGI attach-daemon2 (the ini's commented line):
    the master starts it, and stops it with SIGTERM when uWSGI stops; its
    last publish has every request the workers answered."""
    daemon = "cmd=%s --segment %s --uri %s --step 0.1" % (collector_bin, segment, fake_atlas.url)
    args = ["--processes", "2", "--max-requests", "50", "--min-worker-lifetime", "0",
            "--attach-daemon2", daemon]
    pid = 0
    try:
        with uwsgi(segment, tmp_path / "uwsgi.log", args) as server:
            pid = wait_until(lambda: collector_pid(segment), 30,
                             "the attached collector to open the segment")
            result = send_requests(server.port, 300, CLIENTS)
        # uWSGI has exited; the collector it stopped finishes its last publish.
        wait_until(lambda: process_gone(pid), 30, "the attached collector to exit")
    finally:
        if pid and not process_gone(pid):
            os.kill(pid, signal.SIGKILL)
    log = server.log()
    # (uWSGI runs the command under /bin/sh: the daemon pid it logs is the
    # shell's, the collector is its child.)
    assert "[uwsgi-daemons] stopping daemon" in log, log[-3000:]
    print("%d answered 200" % result.ok)
    assert (result.ok, result.failed) == (300, 0)
    assert_exactly(fake_atlas, 300)


def test_sigkilled_workers_lose_no_answered_request(segment, fake_atlas, run_collector,
                                                    tmp_path):
    """As test_gunicorn.py's test of the same name: three uWSGI workers are
    SIGKILLed under load and the master respawns them. Each worker serves one
    request at a time, and app.py counts a request just before returning it:
        answered 200  <=  published  <=  answered 200 + failed,  failed <= kills."""
    total = 2000
    with run_collector(segment, fake_atlas.url, step=0.1):
        with uwsgi(segment, tmp_path / "uwsgi.log", ["--processes", "4"]) as server:
            result, kills = kill_workers_under_load(server, 4, total, CLIENTS,
                                                    "uWSGI")
        log = server.log()
    assert_kills_cost_only_unanswered(fake_atlas, result, kills, total)
    for pid in kills:  # uWSGI saw each death
        assert "(pid: %d) died, killed by signal 9" % pid in log, log[-3000:]
