"""Atomic placement: a temp file beside the destination, fsync, os.replace, fsync dir.

A kill at any moment leaves the destination as it was or as the finished file,
never a mix; at worst a hidden ``.NAME.scrub-*.part`` temp is left, which the
next run for that destination removes.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

SUFFIX = ".part"


def temp_for(dest: Path) -> Path:
    return dest.with_name(f".{dest.name}.scrub-{os.getpid()}-{secrets.token_hex(4)}{SUFFIX}")


def clear_stale(dest: Path) -> None:
    """Remove temps a killed run left for `dest`."""
    if dest.parent.is_dir():
        for p in dest.parent.glob(f".{_glob_escape(dest.name)}.scrub-*{SUFFIX}"):
            p.unlink(missing_ok=True)


def _glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in name)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def place(tmp: Path, dest: Path) -> None:
    """Move a finished, fsynced temp over `dest` and make the rename durable."""
    os.replace(tmp, dest)
    fsync_dir(dest.parent)
