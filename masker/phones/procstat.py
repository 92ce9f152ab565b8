"""What a process costs, read from /proc: CPU seconds, resident memory, open sockets,
how long its threads waited for a CPU, and how long the hypervisor kept each virtual
CPU from running at all (steal)."""

from __future__ import annotations

import os
from collections.abc import Callable

CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (from /proc/<pid>/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_kib(pid: int) -> int:
    """Resident set size in KiB (VmRSS)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def proc_tree(pid: int) -> list[int]:
    """The process and its descendants (a service and its media workers)."""
    tree = [pid]
    for p in tree:  # grows as it goes: breadth first
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children") as f:
                    tree.extend(int(c) for c in f.read().split())
        except OSError:
            continue  # ended meanwhile
    return tree


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its descendants (processes that
    have exited drop out)."""
    total = 0.0
    for p in proc_tree(pid):
        try:
            total += proc_cpu_s(p)
        except OSError:
            continue
    return total


def tree_rss_kib(pid: int) -> int:
    """Resident set size of a process and its descendants, in KiB."""
    return sum(_or_zero(proc_rss_kib, p) for p in proc_tree(pid))


def tree_sockets(pid: int) -> int:
    """Open sockets of a process and its descendants."""
    return sum(_or_zero(proc_sockets, p) for p in proc_tree(pid))


def tree_run_delays_ns(pid: int) -> dict[int, int]:
    """Nanoseconds each thread of a process and its descendants has spent runnable but
    waiting for a CPU (/proc/<pid>/task/<tid>/schedstat), by thread id: a thread that
    waited long was held up by the machine's other load, not by its own work."""
    delays: dict[int, int] = {}
    for p in proc_tree(pid):
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for task in tasks:
            try:
                with open(f"/proc/{p}/task/{task}/schedstat") as f:
                    delays[int(task)] = int(f.read().split()[1])
            except (OSError, IndexError, ValueError):
                continue
    return delays


def _or_zero(measure: Callable[[int], int], pid: int) -> int:
    try:
        return measure(pid)
    except OSError:  # the process ended between listing and reading
        return 0


def proc_sockets(pid: int) -> int:
    """Open sockets of a process (for a UDP service: its SIP, RTP and RTCP sockets)."""
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                n += 1
        except OSError:
            pass
    return n


def udp_drops(port_min: int, port_max: int, ports: set[int] | None = None) -> int:
    """Datagrams the kernel dropped (receive buffer full) on UDP sockets bound to
    local ports in [port_min, port_max] (or in `ports`): packets never read."""
    total = 0
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            cols = line.split()
            port = int(cols[1].rsplit(":", 1)[1], 16)
            if (port_min <= port <= port_max) or (ports is not None and port in ports):
                total += int(cols[-1])
    return total


def cpu_steal_ms() -> dict[str, int]:
    """Milliseconds each CPU (cpu0, cpu1, ...) has been kept from running by the
    hypervisor since boot (/proc/stat's steal column): time in which no thread on it,
    the service's included, ran, whatever the machine's own load."""
    steal: dict[str, int] = {}
    with open("/proc/stat") as f:
        for line in f:
            name, *fields = line.split()
            if name.startswith("cpu") and name != "cpu" and len(fields) > 7:
                steal[name] = int(fields[7]) * 1000 // CLK_TCK
    return steal
