"""Per-file JSON and CSV reports and the run summary.  Never digit values."""

from __future__ import annotations

import csv
import io
import json
import os
from pathlib import Path
from typing import Any

from masker.scrub import atomic

CSV_FIELDS = (
    "input",
    "output",
    "format",
    "status",
    "seconds",
    "keys_masked",
    "spans",
    "events_removed",
    "info_blanked",
    "verification",
    "error",
)


def summary(
    results: list[dict[str, Any]], ignored: int, wall_s: float, cpu_s: float
) -> dict[str, Any]:
    count = {
        s: sum(1 for r in results if r["status"] == s)
        for s in ("clean", "failed", "error", "unsupported", "skipped", "dry-run")
    }
    audio = sum(r.get("seconds") or 0.0 for r in results if r["status"] != "skipped")
    channel_s = sum(
        (r.get("seconds") or 0.0) * (r.get("channels") or 1)
        for r in results
        if r["status"] != "skipped"
    )
    return {
        "files": len(results),
        **count,
        "ignored": ignored,
        "audio_hours": round(audio / 3600, 4),
        "keys_masked": sum(r.get("keys_masked") or 0 for r in results),
        "wall_s": round(wall_s, 2),
        "cpu_s": round(cpu_s, 2),
        "channel_seconds": round(channel_s, 1),
        "channel_s_per_cpu_s": round(channel_s / cpu_s) if cpu_s > 0 else None,
    }


def _csv_row(r: dict[str, Any]) -> dict[str, Any]:
    v = r.get("verification") or {}
    return {
        "input": r["input"],
        "output": r.get("output") or "",
        "format": r.get("format") or "",
        "status": r["status"],
        "seconds": r.get("seconds") or 0,
        "keys_masked": r.get("keys_masked") or 0,
        "spans": len(r.get("spans") or []),
        "events_removed": r.get("events_removed", ""),
        "info_blanked": r.get("info_blanked", ""),
        "verification": v.get("result", ""),
        "error": r.get("error") or "",
    }


def write(
    state_dir: Path, results: list[dict[str, Any]], summ: dict[str, Any]
) -> tuple[Path, Path]:
    state_dir.mkdir(parents=True, exist_ok=True)
    files = [
        {k: v for k, v in r.items() if k not in ("key", "output_sha256", "cpu_s")} for r in results
    ]
    out_json = state_dir / "report.json"
    out_csv = state_dir / "report.csv"
    _atomic_text(out_json, json.dumps({"summary": summ, "files": files}, indent=2) + "\n")
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS)
    w.writeheader()
    for r in results:
        w.writerow(_csv_row(r))
    _atomic_text(out_csv, buf.getvalue())
    return out_json, out_csv


def _atomic_text(path: Path, text: str) -> None:
    tmp = atomic.temp_for(path)
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    atomic.place(tmp, path)
