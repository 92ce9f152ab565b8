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
    fd = os.open(placed_path(manifest_path), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (json.dumps({"output": f"{output_sha256}:{digest}"}) + "\n").encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def load(path: Path) -> tuple[set[str], set[str]]:
    """(keys of clean inputs, "sha:options" of clean outputs) recorded so far, the
    in-place results noted before their placement among the outputs."""
    keys: set[str] = set()
    outputs = _placed(placed_path(path))
    if not path.exists():
        return keys, outputs
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and rec.get("status") == "clean" and "key" in rec:
                keys.add(rec["key"])
                opts = rec["key"].rsplit(":", 1)[-1]
                if rec.get("output_sha256"):
                    outputs.add(f"{rec['output_sha256']}:{opts}")
    return keys, outputs


def _placed(path: Path) -> set[str]:
    outputs: set[str] = set()
    if not path.exists():
        return outputs
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict) and isinstance(rec.get("output"), str):
                outputs.add(rec["output"])
    return outputs


class Writer:
    """Appends records (the main process is the only writer)."""

    def __init__(self, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def add(self, record: dict[str, Any]) -> None:
        os.write(self._fd, (json.dumps(record, sort_keys=True) + "\n").encode())
        os.fsync(self._fd)

    def close(self) -> None:
        os.close(self._fd)
