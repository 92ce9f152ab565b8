"""Resume state: JSON lines, one per finished clean file, keyed by content and options.

``key`` is sha256(input content) + ":" + the options digest; ``output_sha256``
is the scrubbed result, so a rerun skips an input it already cleaned (and, with
``--in-place``, a file that already is a clean result).  Lines are appended
with one write and fsynced; a line cut short by a kill is ignored.

An in-place run also notes each result in ``placed.jsonl`` beside the manifest
*before* it replaces the original: a kill between the replacement and the main
process's manifest line then still leaves the file known as a clean result, and
the next run skips it instead of scrubbing its own output again.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def sha256_file(path: str | os.PathLike[str], block: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            h.update(chunk)
    return h.hexdigest()


def options_digest(options: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:16]


#: The in-place results' journal, beside the manifest.
PLACED_NAME = "placed.jsonl"


def placed_path(manifest_path: Path) -> Path:
    return manifest_path.with_name(PLACED_NAME)


def note_placed(manifest_path: Path, output_sha256: str, digest: str) -> None:
    """Durably note a clean result about to replace its original (a worker's append:
    one short write with O_APPEND, so workers' lines never interleave)."""
    fd = _open_for_append(placed_path(manifest_path))
    try:
        _append(fd, {"output": f"{output_sha256}:{digest}"})
    finally:
        os.close(fd)


def load(path: Path) -> tuple[set[str], set[str]]:
    """(keys of clean inputs, "sha:options" of clean outputs) recorded so far, the
    in-place results noted before their placement among the outputs."""
    keys: set[str] = set()
    outputs = {
        rec["output"] for rec in _records(placed_path(path)) if isinstance(rec.get("output"), str)
    }
    for rec in _records(path):
        if rec.get("status") == "clean" and "key" in rec:
            keys.add(rec["key"])
            opts = rec["key"].rsplit(":", 1)[-1]
            if rec.get("output_sha256"):
                outputs.add(f"{rec['output_sha256']}:{opts}")
    return keys, outputs


def _records(path: Path) -> Iterator[dict[str, Any]]:
    """The JSON objects of a JSON-lines file, if it exists (a line cut short by a
    kill, or anything but an object, is skipped)."""
    if not path.exists():
        return
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                yield rec


def _open_for_append(path: Path) -> int:
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def _append(fd: int, record: dict[str, Any]) -> None:
    """One line, in one write, fsynced."""
    os.write(fd, (json.dumps(record, sort_keys=True) + "\n").encode())
    os.fsync(fd)


class Writer:
    """Appends records (the main process is the only writer)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = _open_for_append(path)

    def add(self, record: dict[str, Any]) -> None:
        _append(self._fd, record)

    def close(self) -> None:
        os.close(self._fd)
