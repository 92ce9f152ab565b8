"""Periodic chores (the vault purge) run on their own thread, survive a failing run, stop."""

from __future__ import annotations

import threading
import time

import pytest

from masker.runtime.housekeeping import Periodic


def test_job_runs_repeatedly_on_its_own_thread():
    threads: list[str] = []
    p = Periodic("chore", lambda: threads.append(threading.current_thread().name), 0.02).start()
    time.sleep(0.2)
    p.stop()
    assert len(threads) >= 3 and set(threads) == {"chore"}


def test_a_failing_run_does_not_stop_the_next_ones():
    calls = []

    def job():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("boom")

    p = Periodic("flaky", job, 0.02).start()
    time.sleep(0.2)
    p.stop()
    assert len(calls) >= 3 and p.runs == len(calls) - 1


def test_nothing_runs_after_stop():
    calls = []
    p = Periodic("stopped", lambda: calls.append(1), 0.02).start()
    p.stop()
    n = len(calls)
    time.sleep(0.1)
    assert len(calls) == n


def test_interval_must_be_positive():
    with pytest.raises(ValueError):
        Periodic("bad", lambda: None, 0)
