"""Resume state: JSON lines, one per finished clean file, keyed by content and options.

``key`` is sha256(input content) + ":" + the options digest; ``output_sha256``
is the scrubbed result, so a rerun skips an input it already cleaned (and, with
``--in-place``, a file that already is a clean result).  Lines are appended
with one write and fsynced; a line cut short by a kill is ignored.
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


def load(path: Path) -> tuple[set[str], set[str]]:
    """(keys of clean inputs, "sha:options" of clean outputs) recorded so far."""
    keys: set[str] = set()
    outputs: set[str] = set()
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
