"""The examples of the classic spectator-py 0.1 README, pasted as they are
with only the import changed (`from spectator import GlobalRegistry` ->
`from spectator_shm import GlobalRegistry`), run in a fresh interpreter with
SPECTATOR_SEGMENT pointing at a test segment, and checked to publish what
that README says they publish.

Snippets that use GlobalRegistry without importing it rely on the README's
"Importing" section; they get that (changed) import line in front. The one
endless loop gets stand-ins for the functions it calls, and a sleep() that
ends it after three rounds without sleeping.
"""

import os
import subprocess
import sys
import textwrap

import pytest

from helpers import key

IMPORT = "from spectator_shm import GlobalRegistry\n"


def run_example(segment, code, prelude=""):
    code = textwrap.dedent(code)
    program = ("" if IMPORT in code else IMPORT) + textwrap.dedent(prelude) + code
    env = dict(os.environ, SPECTATOR_SEGMENT=segment)
    proc = subprocess.run([sys.executable, "-c", program], env=env, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 0, "example failed:\n%s\n%s" % (program, proc.stderr)
    return proc


def user_measurements(measurements):
    return {k: v for k, v in measurements.items() if not k[0].startswith("spectator.")}


# --- "Importing" ------------------------------------------------------------

IMPORTING = """
from spectator_shm import GlobalRegistry
"""

DISABLE_AUTO_START = """
import os

os.environ["SPECTATOR_PY_DISABLE_AUTO_START_GLOBAL"] = "1"
"""

START_AFTER_FORK = """
from spectator_shm import GlobalRegistry

GlobalRegistry.start()
"""

SPAWN_GLOBAL = """
from multiprocessing import set_start_method
set_start_method("spawn")
"""

SPAWN_CONTEXT = """
from multiprocessing import get_context

def your_func():
    with get_context("spawn").Pool() as pool:
        pass
"""

LOGGING = """
import logging

# record the human-readable time, name of the logger, logging level, thread id and message
logging.basicConfig(
    level=logging.DEBUG,
    format='%(asctime)s - %(name)s - %(levelname)s - %(thread)d - %(message)s'
)

# silence the HttpClient logger output, to minimize confusion while reading logs
logging.getLogger('spectator.HttpClient').setLevel(logging.ERROR)

# set the Registry logger to INFO or ERROR when done troubleshooting
logging.getLogger('spectator.Registry').setLevel(logging.DEBUG)
"""


@pytest.mark.parametrize("code", [IMPORTING, DISABLE_AUTO_START, START_AFTER_FORK, SPAWN_GLOBAL,
                                  LOGGING],
                         ids=["importing", "disable-auto-start", "start", "spawn", "logging"])
def test_setup_examples_run_and_publish_nothing(segment, collect_once, code):
    # Then a counter, so that the example is known to leave the registry working.
    proc = run_example(segment, code + "\nGlobalRegistry.counter('after.example').increment()\n")
    assert "Traceback" not in proc.stderr
    assert user_measurements(collect_once(segment)) == {
        key("after.example", statistic="count"): 1}


def test_spawn_context_example_runs(segment, collect_once):
    run_example(segment, SPAWN_CONTEXT + """
if __name__ == "__main__":
    your_func()
    GlobalRegistry.counter('after.example').increment()
""")
    assert user_measurements(collect_once(segment)) == {
        key("after.example", statistic="count"): 1}


# --- "Working with IDs" and "Meter Types" -------------------------------------

IDS = """
requests_id = GlobalRegistry.counter('server.numRequests', {'statusCode': str(200)})
requests_id.increment()
"""

COUNTER = """
GlobalRegistry.counter('server.numRequests').increment()
"""

COUNTER_AMOUNT = """
GlobalRegistry.counter('queue.itemsAdded').increment(10)
"""

SUMMARY = """
GlobalRegistry.distribution_summary('server.requestSize').record(10)
"""

GAUGE = """
GlobalRegistry.gauge('server.queueSize').set(10)
"""

AGE_GAUGE = """
last_success = GlobalRegistry.age_gauge('last_success', {'id': 'cache_refresh'})

# periodically scheduled work
while True:
    refresh_cache()
    if refresh_successful():
        last_success.reset()
    sleep(300)
"""

# Stand-ins for what the age gauge example calls, so that it ends.
AGE_GAUGE_PRELUDE = """
class _Done(Exception):
    pass

_rounds = []

def refresh_cache():
    pass

def refresh_successful():
    return True

def sleep(seconds):
    _rounds.append(seconds)
    if len(_rounds) == 3:
        raise _Done()
"""

TIMER = """
GlobalRegistry.timer('server.requestLatency').record(0.01)
"""


def test_ids_example(segment, collect_once):
    run_example(segment, IDS)
    assert user_measurements(collect_once(segment)) == {
        key("server.numRequests", statusCode="200", statistic="count"): 1}


def test_counter_examples(segment, collect_once):
    run_example(segment, COUNTER)
    run_example(segment, COUNTER_AMOUNT)
    assert user_measurements(collect_once(segment)) == {
        key("server.numRequests", statistic="count"): 1,
        key("queue.itemsAdded", statistic="count"): 10}


def test_distribution_summary_example(segment, collect_once):
    run_example(segment, SUMMARY)
    assert user_measurements(collect_once(segment)) == {
        key("server.requestSize", statistic="count"): 1,
        key("server.requestSize", statistic="totalAmount"): 10,
        key("server.requestSize", statistic="totalOfSquares"): 100,
        key("server.requestSize", statistic="max"): 10}


def test_gauge_example_and_nan_clears(segment, collect_once):
    run_example(segment, GAUGE)
    assert user_measurements(collect_once(segment)) == {
        key("server.queueSize", statistic="gauge"): 10}
    # "set it to float('nan')" stops reporting it.
    run_example(segment, "GlobalRegistry.gauge('server.queueSize').set(float('nan'))\n")
    assert user_measurements(collect_once(segment)) == {}


def test_age_gauge_example(segment, collect_once):
    code = "try:\n" + textwrap.indent(textwrap.dedent(AGE_GAUGE), "    ") + \
        "except _Done:\n    print('rounds', len(_rounds))\n"
    proc = run_example(segment, code, prelude=AGE_GAUGE_PRELUDE)
    assert proc.stdout.strip() == "rounds 3"
    m = user_measurements(collect_once(segment))
    assert list(m) == [key("last_success", id="cache_refresh", statistic="gauge")]
    age = m[key("last_success", id="cache_refresh", statistic="gauge")]
    assert 0 <= age < 60  # just reset; the collector ran right after


def test_timer_example_keeps_the_four_statistics(segment, collect_once):
    run_example(segment, TIMER)
    m = user_measurements(collect_once(segment))
    assert m == {
        key("server.requestLatency", statistic="count"): 1,
        key("server.requestLatency", statistic="totalTime"): 0.01,
        key("server.requestLatency", statistic="totalOfSquares"): pytest.approx(0.0001),
        key("server.requestLatency", statistic="max"): 0.01}
