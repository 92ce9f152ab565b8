"""What to scrub: files, folders (recursive) and list files, mirrored under --out."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from masker.errors import UserError
from masker.scrub.audio import SF_EXTS, WAV_EXTS
from masker.scrub.pcap import PCAP_EXTS


@dataclass(frozen=True)
class Item:
    src: str
    rel: str
    kind: str  # "audio" | "pcap"
    size: int


def kind_of(path: str) -> str | None:
    ext = os.path.splitext(path)[1].lower()
    if ext in WAV_EXTS or ext in SF_EXTS:
        return "audio"
    if ext in PCAP_EXTS:
        return "pcap"
    return None


def _expand(sources: list[str]) -> list[tuple[Path, Path | None]]:
    """(file, the folder it was found under or None) for every source; @FILE lists."""
    out: list[tuple[Path, Path | None]] = []
    for s in sources:
        if s.startswith("@"):
            try:
                lines = Path(s[1:]).read_text(encoding="utf-8").splitlines()
            except OSError as exc:
                raise UserError(f"cannot read list file {s[1:]}: {exc.strerror}") from None
            out += _expand([ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")])
            continue
        p = Path(s)
        if p.is_dir():
            for root, dirs, files in os.walk(p):
                dirs[:] = sorted(d for d in dirs if not d.startswith(".masker-scrub"))
                out += [(Path(root) / f, p) for f in sorted(files) if not f.endswith(".part")]
        elif p.exists():
            out.append((p, None))
        else:
            raise UserError(f"{s}: no such file or folder")
    return out


def plan(sources: list[str]) -> tuple[list[Item], int]:
    """(items to scrub, files ignored as not recordings); rel paths mirror the inputs
    under their common folder."""
    found = _expand(sources)
    seen: set[str] = set()
    files: list[tuple[str, str]] = []
    bases = []
    ignored = 0
    for f, base in found:
        a = os.path.abspath(f)
        if a in seen:
            continue
        seen.add(a)
        kind = kind_of(a)
        if kind is None:
            ignored += 1
            continue
        files.append((a, kind))
        bases.append(os.path.abspath(base) if base is not None else os.path.dirname(a))
    if not files:
        return [], ignored
    root = os.path.commonpath(bases)
    items = [Item(f, os.path.relpath(f, root), kind, os.path.getsize(f)) for f, kind in files]
    return items, ignored
