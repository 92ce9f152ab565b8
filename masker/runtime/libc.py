"""The C library, for the few calls Python's standard library does not wrap
(prctl for process hygiene, mallopt for a media worker's allocator)."""

from __future__ import annotations

import ctypes
import ctypes.util
from functools import lru_cache


@lru_cache(maxsize=1)
def libc() -> ctypes.CDLL | None:
    """This process's C library (errno kept for ctypes.get_errno), None if not found."""
    path = ctypes.util.find_library("c")
    return None if path is None else ctypes.CDLL(path, use_errno=True)
