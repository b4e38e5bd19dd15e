"""multiprocessing pools on one segment: meters created in the parent before
the fork are updated by every pool worker, and the collector publishes the
exact sum, while the workers run (a collector stepping every 0.1 s takes
values concurrently with the increments) and at its final step."""

import multiprocessing
import os

import pytest

from spectator_shm import GlobalRegistry, Registry
from helpers import key

WORKERS = 8
PER_WORKER = 10_000
TOTAL = WORKERS * PER_WORKER

# Set in the parent before the pool forks; the fork children inherit them.
_meters = {}


def _work(n):
    counter, timer, summary = _meters["counter"], _meters["timer"], _meters["summary"]
    # All 8 tasks wait for each other: each runs in its own worker process.
    _meters["barrier"].wait(60)
    for i in range(n):
        if i == n // 2:
            # Half done: the parent lets a step publish part of it first.
            assert _meters["resume"].wait(60), "the parent never resumed the workers"
        counter.increment()
        timer.record(0.001)
        summary.record(2)
    return os.getpid()


def _work_global(n):
    # A spawned child: a fresh interpreter that opens GlobalRegistry from the
    # inherited SPECTATOR_SEGMENT at this first use.
    counter = GlobalRegistry.counter("mp.spawn.count")
    timer = GlobalRegistry.timer("mp.spawn.latency")
    for _ in range(n):
        counter.increment()
        timer.record(0.001)
    return os.getpid()


def _fork_pool_run(segment, halfway=None):
    """Runs the 8 fork workers; halfway(), if given, is called while each has
    done half its work and waits (its return value is ignored)."""
    registry = Registry(segment)
    _meters.update(counter=registry.counter("mp.count", {"pool": "fork"}),
                   timer=registry.timer("mp.latency", {"pool": "fork"}),
                   summary=registry.distribution_summary("mp.size", {"pool": "fork"}))
    context = multiprocessing.get_context("fork")
    _meters["barrier"] = context.Barrier(WORKERS)
    _meters["resume"] = context.Event()
    try:
        with context.Pool(WORKERS) as pool:
            result = pool.map_async(_work, [PER_WORKER] * WORKERS, chunksize=1)
            try:
                if halfway is not None:
                    halfway()
            finally:
                _meters["resume"].set()
            pids = result.get(120)
    finally:
        _meters.clear()
    print("%d tasks ran in %d distinct worker processes" % (len(pids), len(set(pids))))
    assert len(set(pids)) == WORKERS
    assert os.getpid() not in pids
    return registry


def test_fork_pool_publishes_exact_totals(segment, fake_atlas, run_collector):
    def halfway():
        # A regular step publishes part of the counts while the workers wait
        # halfway: the totals are exact across steps, not only within one.
        assert fake_atlas.wait_for(lambda a: a.sum("mp.count", pool="fork") > 0, timeout=30), \
            "no step published the first half within 30 s"

    with run_collector(segment, fake_atlas.url, step=0.1):
        registry = _fork_pool_run(segment, halfway)
    count = fake_atlas.sum("mp.count", pool="fork")
    timed = fake_atlas.sum("mp.latency", pool="fork")
    total_time = fake_atlas.sum("mp.latency", statistic="totalTime", pool="fork")
    amount = fake_atlas.sum("mp.size", statistic="totalAmount", pool="fork")
    print("published: count %g, timer count %g, totalTime %g, summary totalAmount %g, "
          "in %d payloads" % (count, timed, total_time, amount, fake_atlas.request_count))
    assert count == TOTAL
    assert timed == TOTAL
    assert total_time == pytest.approx(TOTAL * 0.001, rel=1e-9)
    assert amount == 2 * TOTAL
    assert fake_atlas.totals()[key("mp.latency", pool="fork", statistic="max")] == \
        pytest.approx(0.001)
    del registry


def test_fork_pool_totals_on_the_stdout_sink(segment, collect_once):
    _fork_pool_run(segment)
    got = collect_once(segment)
    assert got[key("mp.count", pool="fork", statistic="count")] == TOTAL
    assert got[key("mp.latency", pool="fork", statistic="count")] == TOTAL
    assert got[key("mp.size", pool="fork", statistic="totalAmount")] == 2 * TOTAL
    # --once took the values: a second collection has none of them.
    again = collect_once(segment)
    assert key("mp.count", pool="fork", statistic="count") not in again


def test_spawn_pool_children_open_the_global_registry(segment, fake_atlas, run_collector,
                                                      monkeypatch):
    monkeypatch.setenv("SPECTATOR_SEGMENT", segment)
    with run_collector(segment, fake_atlas.url, step=0.1):
        with multiprocessing.get_context("spawn").Pool(4) as pool:
            pids = pool.map(_work_global, [PER_WORKER] * 4, chunksize=1)
    assert len(pids) == 4
    print("published: %g" % fake_atlas.sum("mp.spawn.count"))
    assert fake_atlas.sum("mp.spawn.count") == 4 * PER_WORKER
    assert fake_atlas.sum("mp.spawn.latency") == 4 * PER_WORKER
