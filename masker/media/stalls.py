"""Why the media thread came late to a tick: its own work, a wait for a CPU the
machine gave to other work, or neither (blocked in a system call or a page fault,
or the virtual machine itself paused).  An operator reading a late tick needs to
know which of the three to fix: the service's load, the box's, or the box.

The thread marks its clocks once per sub-tick (wall, its own CPU time and, from
/proc/thread-self/schedstat, its time runnable but waiting for a CPU); a tick that
finds itself STALL_S behind explains the time since the last mark by them.
"""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass

#: A tick this far behind its time is a stall worth a log line.
STALL_S = 0.1
SCHEDSTAT = "/proc/thread-self/schedstat"


@dataclass(frozen=True)
class Stall:
    """The time between two marks of the media thread, split by where it went (ms)."""

    wall_ms: float
    cpu_ms: float  # the thread's own work (handlers, ticks)
    waited_ms: float  # runnable, but the CPU was given to others
    other_ms: float  # neither: blocked, a page fault, or the machine paused

    def fields(self) -> dict[str, float]:
        return {
            "wall_ms": round(self.wall_ms, 1),
            "cpu_ms": round(self.cpu_ms, 1),
            "waited_ms": round(self.waited_ms, 1),
            "other_ms": round(self.other_ms, 1),
        }


class StallWatch:
    """The media thread's clocks at its last mark (used on that thread only)."""

    def __init__(self) -> None:
        self._fd: int | None = None
        self._opened = False
        self._wall = 0.0
        self._cpu = 0.0
        self._waited = 0

    def _run_delay_ns(self) -> int:
        """Nanoseconds this thread has waited for a CPU (0 where /proc has no schedstat)."""
        if not self._opened:  # opened on the thread it describes
            self._opened = True
            with contextlib.suppress(OSError):
                self._fd = os.open(SCHEDSTAT, os.O_RDONLY)
        if self._fd is None:
            return 0
        try:
            return int(os.pread(self._fd, 96, 0).split()[1])
        except (OSError, IndexError, ValueError):
            return 0

    def mark(self, now: float) -> None:
        self._wall = now
        self._cpu = time.thread_time()
        self._waited = self._run_delay_ns()

    def since_mark(self, now: float) -> Stall:
        wall = (now - self._wall) * 1e3
        # read after `now`: the CPU clock may pass the wall clock by its last moment
        cpu = min((time.thread_time() - self._cpu) * 1e3, wall)
        waited = (self._run_delay_ns() - self._waited) / 1e6
        return Stall(wall, cpu, waited, max(0.0, wall - cpu - waited))

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
