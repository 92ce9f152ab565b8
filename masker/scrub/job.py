"""One file, start to finish, in a worker process.

hash -> skip if the manifest has it -> scrub into a temp beside the destination
-> fsync -> read the temp back with the independent receiver -> only if no
digit is recoverable, replace the destination atomically.  Every problem
becomes a per-file result; nothing here raises.
"""

from __future__ import annotations

import os
import re
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from masker.scrub import atomic, manifest
from masker.scrub.audio import ScrubError

if TYPE_CHECKING:
    from masker.scrub.plan import Item

_state: dict[str, Any] = {}
_LONG_NUMBER = re.compile(r"\d{7,}")


def init_worker(manifest_path: str | None) -> None:
    """Pool initializer: load what earlier runs finished (once per worker)."""
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, "1")
    keys, outputs = manifest.load(Path(manifest_path)) if manifest_path else (set(), set())
    _state["keys"], _state["outputs"] = keys, outputs
    _state["manifest"] = Path(manifest_path) if manifest_path else None


def _safe(msg: str) -> str:
    """Error text for a report: one line, no long digit runs (never card data)."""
    return _LONG_NUMBER.sub("#", msg.strip().splitlines()[0] if msg.strip() else "error")[:300]


def run_item(item: Item, out_dir: str | None, opts: dict[str, Any]) -> dict[str, Any]:
    t0, c0 = time.perf_counter(), time.process_time()
    res: dict[str, Any] = {
        "input": item.rel,
        "format": None,
        "status": "error",
        "seconds": 0.0,
        "keys_masked": 0,
        "spans": [],
        "verification": None,
        "error": None,
    }
    try:
        _run(item, out_dir, opts, res)
    except ScrubError as exc:
        res["status"], res["error"] = "error", _safe(str(exc))
    except MemoryError:
        res["status"], res["error"] = "error", "out of memory"
    except Exception as exc:
        where = traceback.extract_tb(exc.__traceback__)[-1]
        res["status"] = "error"
        res["error"] = _safe(f"{type(exc).__name__} at {Path(where.filename).name}:{where.lineno}")
    res["elapsed_s"] = round(time.perf_counter() - t0, 3)
    res["cpu_s"] = round(time.process_time() - c0, 4)
    return res


def _run(item: Item, out_dir: str | None, opts: dict[str, Any], res: dict[str, Any]) -> None:
    digest = opts["digest"]
    in_sha = manifest.sha256_file(item.src)
    res["key"] = f"{in_sha}:{digest}"
    dest = Path(item.src) if out_dir is None else Path(out_dir) / item.rel
    res["output"] = None
    if not opts["dry_run"]:
        if res["key"] in _state.get("keys", ()) and (
            out_dir is None
            or (
                dest.exists()
                and f"{manifest.sha256_file(dest)}:{digest}" in _state.get("outputs", ())
            )
        ):
            res["status"] = "skipped"
            return
        if out_dir is None and f"{in_sha}:{digest}" in _state.get("outputs", ()):
            res["status"] = "skipped"  # already a clean result of an earlier in-place run
            return
    if item.kind == "audio":
        _audio(item, dest, opts, res)
    else:
        _pcap(item, dest, opts, res)


def _finish(
    tmp: Path,
    dest: Path,
    leaks: dict[str, Any],
    res: dict[str, Any],
    opts: dict[str, Any],
    changed: bool,
) -> None:
    """Verify the fsynced temp; place it, or drop it and report failure."""
    recoverable = sum(v for k, v in leaks.items() if k != "bad_checksums")
    res["verification"] = {
        "result": "pass" if recoverable == 0 and not leaks.get("bad_checksums") else "fail",
        **leaks,
    }
    if res["verification"]["result"] != "pass":
        tmp.unlink(missing_ok=True)
        res["status"] = "failed"
        return
    res["output_sha256"] = manifest.sha256_file(tmp)
    res["output"] = os.path.relpath(dest)
    if opts["in_place"] and not changed:
        tmp.unlink(missing_ok=True)  # verified, nothing to replace
    else:
        if opts["in_place"] and _state.get("manifest") is not None:
            manifest.note_placed(_state["manifest"], res["output_sha256"], opts["digest"])
        atomic.place(tmp, dest)
    res["status"] = "clean"


def _prepare(dest: Path) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    atomic.clear_stale(dest)
    return atomic.temp_for(dest)


def _audio(item: Item, dest: Path, opts: dict[str, Any], res: dict[str, Any]) -> None:
    from masker.scrub import verify
    from masker.scrub.audio import mask_audio, open_audio, write_masked

    af = open_audio(item.src)
    res.update(
        format=f"{af.container}/{af.encoding}",
        sample_rate=af.rate,
        channels=af.channels,
        seconds=round(af.seconds, 3),
    )
    m = mask_audio(af, opts["mode"], opts["lookahead_ms"], keep_audio=not opts["dry_run"])
    res["keys_masked"] = sum(len(k) for k in m.keys)
    res["detect_rate"] = m.detect_rate
    res["spans"] = [
        {
            "channel": c,
            "start_ms": round(a * 1000 / af.rate, 3),
            "end_ms": round(b * 1000 / af.rate, 3),
        }
        for c, sp in enumerate(m.spans)
        for a, b in sp
    ]
    if opts["dry_run"]:
        res["keys"] = [
            {
                "channel": c,
                "start_ms": round(a * 1000 / af.rate, 1),
                "end_ms": round(b * 1000 / af.rate, 1),
            }
            for c, ks in enumerate(m.keys)
            for a, b in ks
        ]
        res["status"] = "dry-run"
        return
    tmp = _prepare(dest)
    try:
        res["exact_outside_spans"] = write_masked(af, m, str(tmp))
        del af
        atomic.fsync_file(tmp)
        leaks = verify.audio_file_digits(str(tmp), multimon=opts["multimon"])
        _finish(tmp, dest, leaks, res, opts, changed=any(m.spans))
    finally:
        tmp.unlink(missing_ok=True)


def _pcap(item: Item, dest: Path, opts: dict[str, Any], res: dict[str, Any]) -> None:
    from masker.scrub import pcap

    cap = pcap.read_capture(item.src)
    res["format"] = cap.kind
    rep = pcap.scrub(cap, opts["mode"], opts["lookahead_ms"], dry_run=opts["dry_run"])
    rep.pop("seconds")
    res["seconds"] = max((st["seconds"] for st in rep["streams"]), default=0.0)
    res["channels"] = len(rep["streams"])
    res["keys_masked"] = rep.pop("keys")
    res["spans"] = [
        dict(s["masked"][k], stream=n)
        for n, s in enumerate(rep["streams"])
        for k in range(len(s["masked"]))
    ]
    res.update(rep)
    if opts["dry_run"]:
        res["status"] = "dry-run"
        return
    if rep["unsupported"]:
        res["status"] = "unsupported"
        res["error"] = "unsupported codec: " + ", ".join(
            f"{k} ({v} packets)" for k, v in sorted(rep["unsupported"].items())
        )
        return
    changed = bool(res["spans"] or rep["events_removed"] or rep["info_blanked"])
    tmp = _prepare(dest)
    try:
        with open(tmp, "wb") as fh:
            pcap.write_capture(cap, fh)
            fh.flush()
            os.fsync(fh.fileno())
        res["exact_outside_spans"] = True
        _finish(tmp, dest, pcap.leaks(str(tmp), multimon=opts["multimon"]), res, opts, changed)
    finally:
        tmp.unlink(missing_ok=True)
