"""Helpers for the Python tests: process control, polling, measurement keys.
Importable from every test module (pytest puts tests/python on sys.path)."""

import os
import signal
import subprocess
import time

import pytest


def key(name, **tags):
    """The key collect_once() and FakeAtlas.totals() use: key("c", statistic="count")."""
    return (name, frozenset(tags.items()))


def wait_until(predicate, timeout, what):
    """Polls predicate() every 20 ms until it is true; fails the test after
    `timeout` seconds. Returns its (true) result."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            pytest.fail("timed out after %.0f s waiting for %s" % (timeout, what))
        time.sleep(0.02)


def stop_process(proc, sig=signal.SIGTERM, timeout=30.0, group=False):
    """Sends `sig` to proc (its process group if `group`, i.e. it was started
    with start_new_session=True), waits up to `timeout` seconds, then SIGKILLs
    what is left. Returns the exit code of the first wait, None if it had to
    be killed."""
    if proc.poll() is not None:
        return proc.returncode
    try:
        if group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
    except ProcessLookupError:
        pass
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        pass
    try:
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
    except ProcessLookupError:
        pass
    proc.wait(10)
    return None


def kill_group(proc):
    """SIGKILLs what is left of the process group of proc (started with
    start_new_session=True): workers a master left behind."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def read_file(path):
    try:
        with open(path, errors="replace") as f:
            return f.read()
    except FileNotFoundError:
        return ""
