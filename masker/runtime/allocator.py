"""The C allocator's settings for a media worker.

glibc gives each thread that allocates its own arena (up to 8 per core).  A media
worker's allocations come from its media thread, whose arena's heaps give freed
memory back to the kernel less readily than the main one; with one arena a
worker held 2-3 KiB less per call at 200 calls a worker (README, memory per
call).  Nothing else changes: the worker has one busy thread, so no thread waits
on another's allocation.
"""

from __future__ import annotations

from masker.runtime.libc import libc

#: mallopt(3) parameter for the arena limit (glibc's malloc.h).
M_ARENA_MAX = -8


def one_malloc_arena() -> bool:
    """Limit this process to one malloc arena (before it starts threads); False
    where the C library has no glibc mallopt (the setting is then left alone)."""
    mallopt = getattr(libc(), "mallopt", None)  # None: no libc, or not glibc's
    return mallopt is not None and bool(mallopt(M_ARENA_MAX, 1))
