"""A media worker's malloc arena limit (masker.runtime.allocator)."""

from __future__ import annotations

import subprocess
import sys


def test_glibc_takes_the_one_arena_limit_in_a_fresh_process():
    code = "from masker.runtime.allocator import one_malloc_arena; print(one_malloc_arena())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"
