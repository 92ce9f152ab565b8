"""Process cost readings from /proc used by the bench and the leak tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

import pytest

from masker.phones.procstat import (
    cpu_steal_ms,
    proc_cpu_s,
    proc_rss_kib,
    proc_sockets,
    proc_tree,
    tree_rss_kib,
    tree_run_delays_ns,
)


def test_cpu_seconds_grow_while_the_process_works():
    before = proc_cpu_s(os.getpid())
    sum(i * i for i in range(2_000_000))
    assert proc_cpu_s(os.getpid()) > before


def test_steal_is_read_for_every_cpu_and_never_goes_back():
    before = cpu_steal_ms()
    time.sleep(0.05)
    after = cpu_steal_ms()
    assert before and set(after) == set(before)
    assert all(after[cpu] >= before[cpu] >= 0 for cpu in before)


def test_rss_of_a_live_process_is_positive():
    assert proc_rss_kib(os.getpid()) > 1000


def test_an_open_socket_is_counted_and_a_closed_one_is_not():
    before = proc_sockets(os.getpid())
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    opened = proc_sockets(os.getpid())
    s.close()
    assert (opened, proc_sockets(os.getpid())) == (before + 1, before)


@pytest.fixture
def child():
    """A sleeping child process, once /proc lists it among this process's children."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    deadline = time.monotonic() + 5
    while proc.pid not in proc_tree(os.getpid()) and time.monotonic() < deadline:
        time.sleep(0.05)
    yield proc.pid
    proc.kill()
    proc.wait()


def test_process_tree_includes_a_child_and_its_memory(child):
    assert child in proc_tree(os.getpid())
    assert tree_rss_kib(os.getpid()) > proc_rss_kib(os.getpid())


def test_run_delays_name_every_thread_of_the_process():
    delays = tree_run_delays_ns(os.getpid())
    assert {int(t) for t in os.listdir("/proc/self/task")} <= set(delays)
    assert all(ns >= 0 for ns in delays.values())


def test_run_delays_include_a_child_process(child):
    assert child in tree_run_delays_ns(os.getpid())
