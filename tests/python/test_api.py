"""The spectator_shm API: every meter's semantics as the collector publishes
them, bad input that must never raise, the old client's start/stop calls,
and how a segment that cannot be opened is reported.

Values are checked through the real collector (`--once`, stdout sink), which
takes, i.e. resets, what it publishes. Checks of "logged once per kind" run
in a fresh interpreter, because that state is per process.
"""

import gc
import math
import os
import stat
import subprocess
import sys
import textwrap
import time

import pytest

import spectator_shm
from spectator_shm import GlobalRegistry, Registry, SpectatorError
from helpers import key


def stats(measurements, name):
    """{tags without name: value} of every measurement called `name`."""
    return {tags: v for (n, tags), v in measurements.items() if n == name}


def by_statistic(measurements, name, **tags):
    """{statistic: value} of `name` with exactly `tags` plus a statistic."""
    want = set(tags.items())
    out = {}
    for (n, t), v in measurements.items():
        rest = set(t) - want
        if n == name and want <= set(t) and len(rest) == 1:
            (k, stat_name), = rest
            if k == "statistic":
                out[stat_name] = v
    return out


def percentiles(measurements, name):
    """{percentile tag: count} of a percentile meter."""
    return {dict(t)["percentile"]: v for (n, t), v in measurements.items()
            if n == name and dict(t).get("statistic") == "percentile"}


def run_python(code, env=None, check=True):
    """Runs `code` in a fresh /usr/bin/python3 (same sys.executable) with the
    test's PYTHONPATH; returns the CompletedProcess."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=full_env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    if check:
        assert proc.returncode == 0, "child exited %d:\n%s\n%s" % (
            proc.returncode, proc.stdout, proc.stderr)
    return proc


# --------------------------------------------------------------------------
# Meter semantics


def test_counter_sums_increments_and_ignores_bad_deltas(segment, collect_once):
    r = Registry(segment)
    c = r.counter("server.numRequests", {"statusCode": "200"})
    c.increment()
    c.increment()
    c.increment(3)
    c.increment(0.5)
    for bad in (-1, float("nan"), float("inf"), 0):
        c.increment(bad)
    m = collect_once(segment)
    assert m[key("server.numRequests", statistic="count", statusCode="200")] == 5.5
    # Taken: the next step starts from zero and publishes nothing.
    assert stats(collect_once(segment), "server.numRequests") == {}


def test_timer_publishes_count_total_squares_max_in_seconds(segment, collect_once):
    t = Registry(segment).timer("server.requestLatency", {"method": "GET"})
    t.record(0.01)
    t.record(0.03)
    t.record(-1)            # negative: ignored
    t.record(float("nan"))  # ignored
    m = by_statistic(collect_once(segment), "server.requestLatency", method="GET")
    assert m["count"] == 2
    assert m["totalTime"] == pytest.approx(0.04)
    assert m["totalOfSquares"] == pytest.approx(0.01 ** 2 + 0.03 ** 2)
    assert m["max"] == pytest.approx(0.03)


def test_timer_accepts_ints_and_rounds_to_nanoseconds(segment, collect_once):
    t = Registry(segment).timer("t")
    t.record(2)
    t.record(1.5e-9)  # 1.5 ns rounds to 2 ns
    m = by_statistic(collect_once(segment), "t")
    assert m["count"] == 2
    assert m["totalTime"] == 2.000000002


def test_stopwatch_records_the_block_with_a_monotonic_clock(segment, collect_once):
    t = Registry(segment).timer("sw")
    before = time.perf_counter()
    with t.stopwatch():
        # Busy until at least 2 ms have passed on the monotonic clock.
        inside = time.perf_counter()
        while time.perf_counter() - inside < 0.002:
            pass
    elapsed = time.perf_counter() - before
    with pytest.raises(KeyError):
        with t.stopwatch():  # records also when the block raises, and re-raises
            raise KeyError("x")
    m = by_statistic(collect_once(segment), "sw")
    assert m["count"] == 2
    assert 0.002 <= m["max"] <= elapsed
    assert m["totalTime"] <= elapsed + 1.0  # the raising block is short


def test_stopwatch_is_reusable_and_reports_its_duration(segment, collect_once):
    t = Registry(segment).timer("sw2")
    sw = t.stopwatch()
    for _ in range(3):
        with sw:
            pass
    assert sw.duration() >= 0
    assert by_statistic(collect_once(segment), "sw2")["count"] == 3


def test_distribution_summary(segment, collect_once):
    d = Registry(segment).distribution_summary("server.requestSize")
    d.record(10)
    d.record(30)
    for bad in (-1, float("nan"), float("inf")):
        d.record(bad)
    m = by_statistic(collect_once(segment), "server.requestSize")
    assert m == {"count": 2, "totalAmount": 40, "totalOfSquares": 1000, "max": 30}


def test_gauge_publishes_the_last_value_and_nan_clears_it(segment, collect_once):
    r = Registry(segment)
    g = r.gauge("server.queueSize")
    g.set(3)
    g.set(7)
    assert collect_once(segment)[key("server.queueSize", statistic="gauge")] == 7
    # A gauge is sampled, not taken: still published at the next step.
    assert collect_once(segment)[key("server.queueSize", statistic="gauge")] == 7
    g.set(float("nan"))
    assert stats(collect_once(segment), "server.queueSize") == {}


def test_max_gauge_publishes_the_step_maximum(segment, collect_once):
    g = Registry(segment).max_gauge("mg")
    for v in (3, 9, 5, float("nan")):
        g.set(v)
    assert collect_once(segment)[key("mg", statistic="max")] == 9
    g.set(2)
    assert collect_once(segment)[key("mg", statistic="max")] == 2


def test_age_gauge_set_and_reset(segment, collect_once):
    g = Registry(segment).age_gauge("last_success", {"id": "cache_refresh"})
    k = key("last_success", id="cache_refresh", statistic="gauge")
    start = time.time()
    g.set(start - 100)
    age = collect_once(segment)[k]
    assert 100 <= age <= 100 + (time.time() - start) + 1
    before = time.time()
    g.reset()
    age = collect_once(segment)[k]
    assert 0 <= age <= time.time() - before + 1


def test_monotonic_counter_publishes_increases(segment, collect_once):
    mc = Registry(segment).monotonic_counter("bytes.sent")
    k = key("bytes.sent", statistic="count")
    mc.set(10)
    assert k not in collect_once(segment)  # the first sample is the baseline
    mc.set(25)
    assert collect_once(segment)[k] == 15
    mc.set(float("nan"))  # ignored
    mc.set(30)
    assert collect_once(segment)[k] == 5


def test_pct_timer_counts_buckets_clamped_to_its_range(segment, collect_once):
    t = Registry(segment).pct_timer("pt", {"a": "b"}, min=1.0, max=2.0)
    t.record(0.001)  # clamped up to 1 s
    t.record(1.0)
    t.record(100.0)  # clamped down to 2 s
    t.record(2.0)
    m = collect_once(segment)
    assert by_statistic(m, "pt", a="b")["count"] == 4
    assert by_statistic(m, "pt", a="b")["max"] == 100.0
    buckets = percentiles(m, "pt")
    assert sorted(buckets.values()) == [2, 2]
    assert all(p.startswith("T") for p in buckets)


def test_pct_timer_default_range_and_first_registration_wins(segment, collect_once):
    r = Registry(segment)
    first = r.pct_timer("pt2")  # 10 ms .. 60 s
    again = r.pct_timer("pt2", min=5.0, max=6.0)  # gets the registered range
    first.record(0.0001)
    again.record(0.005)  # both clamp to 10 ms
    assert list(percentiles(collect_once(segment), "pt2").values()) == [2]


def test_pct_distribution_summary(segment, collect_once):
    d = Registry(segment).pct_distribution_summary("pd", min=10, max=20)
    d.record(1)
    d.record(10)
    d.record(500)
    d.record(20.9)  # truncated to 20
    m = collect_once(segment)
    assert by_statistic(m, "pd") == {"count": 4, "totalAmount": 531.9,
                                    "totalOfSquares": 1 + 100 + 250000 + 20.9 ** 2, "max": 500}
    buckets = percentiles(m, "pd")
    assert sorted(buckets.values()) == [2, 2]
    assert all(p.startswith("D") for p in buckets)


def test_pct_distribution_summary_default_range_is_exact(segment, collect_once):
    d = Registry(segment).pct_distribution_summary("pd2", None, 0, 2 ** 63 - 1)
    d.record(2 ** 62)
    assert sum(percentiles(collect_once(segment), "pd2").values()) == 1


def test_two_registries_on_one_segment_update_the_same_meter(segment, collect_once):
    a, b = Registry(segment), Registry(segment)
    a.counter("shared", {"k": "v"}).increment(2)
    b.counter("shared", {"k": "v"}).increment(3)
    assert collect_once(segment)[key("shared", k="v", statistic="count")] == 5


def test_tag_order_does_not_matter(segment, collect_once):
    r = Registry(segment)
    r.counter("o", {"a": "1", "b": "2"}).increment()
    r.counter("o", {"b": "2", "a": "1"}).increment()
    assert collect_once(segment)[key("o", a="1", b="2", statistic="count")] == 2


def test_keyword_arguments(segment, collect_once):
    r = Registry(segment)
    r.counter(name="kw", tags={"x": "y"}).increment(amount=2)
    r.timer("kwt").record(seconds=0.5)
    r.distribution_summary("kwd").record(amount=3)
    r.gauge("kwg").set(value=4)
    r.monotonic_counter("kwm").set(total=1)
    r.age_gauge("kwa").set(unix_seconds=time.time())
    r.pct_timer("kwp", tags={"x": "y"}, max=1.0).record(seconds=0.5)
    r.pct_distribution_summary(name="kwpd", min=1, max=10).record(amount=5)
    m = collect_once(segment)
    assert m[key("kw", x="y", statistic="count")] == 2
    assert by_statistic(m, "kwt")["totalTime"] == 0.5
    assert by_statistic(m, "kwd")["totalAmount"] == 3
    assert m[key("kwg", statistic="gauge")] == 4
    assert key("kwa", statistic="gauge") in m
    assert by_statistic(m, "kwp", x="y")["count"] == 1
    assert by_statistic(m, "kwpd")["count"] == 1


def test_meter_keeps_its_registry_alive(segment, collect_once):
    c = Registry(segment).counter("alive")  # the Registry object is dropped at once
    gc.collect()
    c.increment(4)
    assert collect_once(segment)[key("alive", statistic="count")] == 4


def test_meters_made_before_fork_work_in_children(segment, collect_once):
    c = Registry(segment).counter("forked")
    pids = []
    for _ in range(4):
        pid = os.fork()
        if pid == 0:
            try:
                for _ in range(1000):
                    c.increment()
            finally:
                os._exit(0)
        pids.append(pid)
    for pid in pids:
        _, status = os.waitpid(pid, 0)
        assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
    assert collect_once(segment)[key("forked", statistic="count")] == 4000


def test_registry_options(segment):
    r = Registry(segment, max_meters=100, value_words=4096, mode=0o660, group=os.getgid())
    assert r.segment == segment
    st = os.stat(os.path.join("/dev/shm", segment))
    assert stat.S_IMODE(st.st_mode) == 0o660
    assert st.st_gid == os.getgid()
    assert segment in repr(r)


def test_segment_none_uses_env_then_default(segment, monkeypatch):
    monkeypatch.setenv("SPECTATOR_SEGMENT", segment)
    assert Registry().segment == segment
    assert Registry(None).segment == segment


# --------------------------------------------------------------------------
# Bad input: never raises, does the documented thing


def test_non_str_tag_values_and_keys_are_converted_with_str(segment, collect_once):
    r = Registry(segment)
    r.counter("conv", {"statusCode": 200, 7: True}).increment()
    assert collect_once(segment)[key("conv", statusCode="200", statistic="count", **{"7": "True"})] == 1


def test_none_tags_are_dropped(segment, collect_once):
    r = Registry(segment)
    r.counter("dropped", {"a": "x", "b": None, None: "y"}).increment()
    assert stats(collect_once(segment), "dropped") == {
        frozenset({("a", "x"), ("statistic", "count")}): 1}


def test_tags_that_are_not_a_dict(segment, collect_once):
    r = Registry(segment)
    r.counter("nodict1", None).increment()
    r.counter("nodict2", [("k", "v")]).increment()  # what dict() accepts is converted
    r.counter("nodict3", 42).increment()            # anything else: a no-op meter
    r.counter("nodict4", "abc").increment()
    m = collect_once(segment)
    assert m[key("nodict1", statistic="count")] == 1
    assert m[key("nodict2", k="v", statistic="count")] == 1
    assert stats(m, "nodict3") == {} and stats(m, "nodict4") == {}


def test_invalid_names_give_no_op_meters(segment, collect_once):
    r = Registry(segment)
    for name in (None, 42, b"bytes", "", "x" * 10000, "\ud800"):
        for getter in (r.counter, r.timer, r.distribution_summary, r.gauge, r.max_gauge,
                       r.age_gauge, r.monotonic_counter, r.pct_timer,
                       r.pct_distribution_summary):
            getter(name)
    r.counter("x" * 10000).increment()
    r.counter("good").increment()
    m = collect_once(segment)
    user = {n for (n, _t) in m if not n.startswith("spectator.")}
    assert user == {"good"}


def test_too_many_tags_or_too_long_values_give_no_op_meters(segment, collect_once):
    r = Registry(segment)
    r.counter("many", {"k%d" % i: "v" for i in range(30)}).increment()
    r.counter("long", {"k": "v" * 1000}).increment()
    r.counter("reserved", {"statistic": "x"}).increment()
    r.counter("ok", {"k%d" % i: "v" for i in range(20)}).increment()
    m = collect_once(segment)
    assert not stats(m, "many") and not stats(m, "long") and not stats(m, "reserved")
    assert len(stats(m, "ok")) == 1


def test_wrong_argument_types_are_ignored(segment, collect_once):
    r = Registry(segment)
    c, t, d = r.counter("c"), r.timer("t"), r.distribution_summary("d")
    g, mg, ag, mc = r.gauge("g"), r.max_gauge("mg"), r.age_gauge("ag"), r.monotonic_counter("mc")
    pt, pd = r.pct_timer("pt"), r.pct_distribution_summary("pd")
    for bad in ("x", "10", None, b"1", object(), [1], {}, 10 ** 400):
        c.increment(bad)
        t.record(bad)
        d.record(bad)
        g.set(bad)
        mg.set(bad)
        ag.set(bad)
        mc.set(bad)
        pt.record(bad)
        pd.record(bad)
    c.increment(1, 2)  # too many arguments
    c.increment(delta=1)
    t.record()
    t.record(1, seconds=1)
    g.set()
    ag.reset(5)
    with t.stopwatch(1):  # disregarded arguments; still times the block
        pass
    ag.set(float("nan"))
    ag.set(1e300)
    m = collect_once(segment)
    user = {n for (n, _t) in m if not n.startswith("spectator.")}
    assert user == {"t", "ag"}
    assert by_statistic(m, "t")["count"] == 1


def test_getter_argument_errors_give_no_op_meters(segment, collect_once):
    r = Registry(segment)
    r.counter().increment()
    r.counter("a", None, "extra").increment()
    r.counter("b", colour="red").increment()
    r.counter("c", tags=None, name="c").increment()
    r.pct_timer("pt", min="a").record(1)
    r.pct_timer("pt2", min=float("nan")).record(1)
    r.pct_timer("pt3", min=5, max=1).record(1)  # empty range
    r.pct_distribution_summary("pd", min=-1).record(1)
    m = collect_once(segment)
    assert {n for (n, _t) in m if not n.startswith("spectator.")} == set()


def test_type_mismatch_gives_a_no_op_meter(segment, collect_once):
    r = Registry(segment)
    r.counter("m").increment()
    r.gauge("m").set(5)  # exists as a counter: no-op
    m = collect_once(segment)
    assert stats(m, "m") == {frozenset({("statistic", "count")}): 1}


def test_full_segment_gives_no_op_meters(segment, collect_once):
    r = Registry(segment, max_meters=16)
    for i in range(200):
        r.counter("full", {"i": str(i)}).increment()
    m = collect_once(segment)
    published = [t for (n, t) in m if n == "full" and dict(t).get("i") is not None]
    assert 0 < len(published) < 200


def test_removed_segment_file_keeps_working(segment, collect_once):
    r = Registry(segment)
    c = r.counter("before")
    os.unlink(os.path.join("/dev/shm", segment))
    c.increment()
    r.counter("after").increment()  # the mapping is still there
    r.timer("after2").record(1)
    # A collector now sees a fresh segment, without these values.
    assert stats(collect_once(segment), "before") == {}


def test_each_kind_of_bad_input_is_logged_once(segment):
    code = """
        import logging, sys
        logging.basicConfig(stream=sys.stdout, format="%(name)s|%(levelname)s|%(message)s")
        from spectator_shm import Registry
        r = Registry(sys.argv[1] if len(sys.argv) > 1 else {segment!r})
        for _ in range(3):
            r.counter(None)
            r.counter("a", 42)
            r.counter("a", {{"k": 1}})
            r.counter("a", {{"k": None}})
            r.counter("x" * 300)
            r.counter("c").increment("x")
            r.counter("c").increment(-1)
            r.counter("c").increment(1, 2)
            r.gauge("c")
            r.pct_timer("p", min="x")
            r.pct_timer("p2", min=2, max=1)
        print("done")
    """.format(segment=segment)
    out = run_python(code).stdout.splitlines()
    assert out[-1] == "done"
    lines = [line for line in out[:-1] if line]
    for line in lines:
        assert line.startswith("spectator_shm|WARNING|"), line
    expected = ["must be a str", "must be a dict", "converted with str()", "tag dropped",
                "name longer than", "expected a number", "negative, NaN or infinite",
                "takes at most", "not a gauge", "not a number", "empty range"]
    for text in expected:
        assert sum(text in line for line in lines) == 1, (text, lines)
    assert len(lines) == len(expected), lines


# --------------------------------------------------------------------------
# Opening segments


def test_foreign_file_raises_naming_the_segment_and_is_untouched(segment):
    path = os.path.join("/dev/shm", segment)
    content = b"this is not a spectator segment\n" * 200
    with open(path, "wb") as f:
        f.write(content)
    before = os.stat(path)
    with pytest.raises(spectator_shm.ForeignSegmentError) as info:
        Registry(segment)
    e = info.value
    assert isinstance(e, SpectatorError)
    assert segment in str(e)
    assert e.segment == segment and e.code == "foreign_segment"
    with open(path, "rb") as f:
        assert f.read() == content
    after = os.stat(path)
    assert (after.st_size, after.st_mtime_ns, after.st_mode) == (
        before.st_size, before.st_mtime_ns, before.st_mode)


def test_invalid_segment_name_raises_invalid_options():
    for name in ("../etc", "a/b", ".hidden", "", "x" * 300):
        with pytest.raises(spectator_shm.InvalidSegmentOptions) as info:
            Registry(name)
        assert isinstance(info.value, ValueError) and isinstance(info.value, SpectatorError)
        assert info.value.segment == name


def test_out_of_range_capacities_raise(segment):
    with pytest.raises(spectator_shm.InvalidSegmentOptions) as info:
        Registry(segment, max_meters=2 ** 40)
    assert segment in str(info.value)
    with pytest.raises(spectator_shm.InvalidSegmentOptions):
        Registry(segment, mode=0o7777777)
    with pytest.raises(TypeError):
        Registry(segment, max_meters="many")
    with pytest.raises(TypeError):
        Registry(42)
    assert not os.path.exists(os.path.join("/dev/shm", segment))


def test_global_registry_on_unopenable_segment_gives_no_op_meters_and_logs_once(segment):
    path = os.path.join("/dev/shm", segment)
    content = b"\x00foreign" * 512
    with open(path, "wb") as f:
        f.write(content)
    code = """
        import logging, sys
        logging.basicConfig(stream=sys.stdout, format="%(name)s|%(levelname)s|%(message)s")
        from spectator_shm import GlobalRegistry as R
        for _ in range(3):
            R.counter("c", {"a": "b"}).increment()
            R.timer("t").record(0.1)
            with R.timer("t").stopwatch():
                pass
            R.distribution_summary("d").record(1)
            R.gauge("g").set(1)
            R.max_gauge("m").set(1)
            R.age_gauge("a").reset()
            R.age_gauge("a").set(1)
            R.monotonic_counter("mc").set(1)
            R.pct_timer("pt").record(1)
            R.pct_distribution_summary("pd").record(1)
        print("done", R)
    """
    proc = run_python(code, env={"SPECTATOR_SEGMENT": segment})
    lines = proc.stdout.splitlines()
    assert lines[-1].startswith("done") and "no-op" in lines[-1]
    warnings = [line for line in lines[:-1] if line]
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith("spectator_shm|WARNING|") and segment in warnings[0]
    with open(path, "rb") as f:
        assert f.read() == content


def test_global_registry_opens_lazily_from_the_environment(segment, collect_once):
    code = """
        from spectator_shm import GlobalRegistry
        import os
        assert not os.path.exists("/dev/shm/" + os.environ["SPECTATOR_SEGMENT"])
        GlobalRegistry.counter("lazy").increment(3)
        assert GlobalRegistry.segment == os.environ["SPECTATOR_SEGMENT"]
    """
    run_python(code, env={"SPECTATOR_SEGMENT": segment})
    assert collect_once(segment)[key("lazy", statistic="count")] == 3


# --------------------------------------------------------------------------
# The old client's start/stop/env calls


def test_old_client_start_stop_and_env_are_harmless(segment, collect_once):
    code = """
        import os
        os.environ["SPECTATOR_PY_DISABLE_AUTO_START_GLOBAL"] = "1"
        from spectator_shm import GlobalRegistry, Registry
        GlobalRegistry.start()
        GlobalRegistry.counter("compat").increment()
        with GlobalRegistry.start():
            GlobalRegistry.counter("compat").increment()
        GlobalRegistry.stop()
        GlobalRegistry.stop()
        GlobalRegistry.counter("compat").increment()  # still works after stop()
        r = Registry()
        assert r.start() is r
        with r.start() as same:
            assert same is r
        r.stop()
        r.counter("compat").increment()
        import threading
        assert threading.active_count() == 1, threading.enumerate()
    """
    run_python(code, env={"SPECTATOR_SEGMENT": segment})
    assert collect_once(segment)[key("compat", statistic="count")] == 4


def test_no_threads_are_started(segment):
    import threading
    before = threading.active_count()
    r = Registry(segment)
    r.counter("x").increment()
    r.start()
    assert threading.active_count() == before


def test_nan_and_inf_percentile_bounds_do_not_raise(segment):
    r = Registry(segment)
    r.pct_timer("p", min=0, max=float("inf")).record(1)
    r.pct_timer("q", min=-math.inf).record(1)
    r.pct_distribution_summary("r", min=0.5, max=1e30).record(1)
