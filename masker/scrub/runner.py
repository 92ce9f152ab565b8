"""The run: plan, a process pool of `jobs` workers, manifest, progress, reports."""

from __future__ import annotations

import os
import resource
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from masker.scrub import SCRUB_VERSION, manifest, report
from masker.scrub.job import init_worker, run_item
from masker.scrub.plan import Item, plan
from masker.scrub.progress import Progress


@dataclass
class Options:
    sources: list[str]
    out: str | None
    in_place: bool = False
    jobs: int = 0
    mode: str = "tone"
    lookahead_ms: int = 40
    dry_run: bool = False
    multimon: bool = False
    state_dir: str | None = None
    progress: bool | None = None


def _cpu_s() -> float:
    """This process's CPU time (workers report theirs per file)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    return me.ru_utime + me.ru_stime


def run(o: Options) -> tuple[dict[str, Any], list[dict[str, Any]], Path | None]:
    t0, c0 = time.perf_counter(), _cpu_s()
    items, ignored = plan(o.sources)
    out_dir = None if o.in_place or not o.out else os.path.abspath(o.out)
    state = (
        Path(o.state_dir)
        if o.state_dir
        else (Path(out_dir) / ".masker-scrub" if out_dir else Path(".masker-scrub"))
    )
    job_opts = {
        "mode": o.mode,
        "lookahead_ms": o.lookahead_ms,
        "dry_run": o.dry_run,
        "multimon": o.multimon,
        "in_place": o.in_place,
    }
    job_opts["digest"] = manifest.options_digest(
        {"v": SCRUB_VERSION, "mode": o.mode, "lookahead_ms": o.lookahead_ms, "multimon": o.multimon}
    )
    mpath = state / "manifest.jsonl"
    writer = None if o.dry_run else manifest.Writer(mpath)
    jobs = o.jobs or os.cpu_count() or 1
    bar = Progress(len(items), sum(i.size for i in items), o.progress)
    results: list[dict[str, Any]] = []
    pending = list(reversed(items))
    try:
        while pending:
            ctx = get_context("forkserver")
            with ProcessPoolExecutor(
                jobs,
                mp_context=ctx,
                initializer=init_worker,
                initargs=(None if o.dry_run else str(mpath),),
            ) as pool:
                running: dict[Future[dict[str, Any]], Item] = {}
                broken = False
                while (pending or running) and not broken:
                    while pending and len(running) < 2 * jobs:
                        it = pending.pop()
                        running[pool.submit(run_item, it, out_dir, job_opts)] = it
                    done, _ = wait(running, return_when=FIRST_COMPLETED)
                    for fut in done:
                        it = running.pop(fut)
                        try:
                            res = fut.result()
                        except BrokenProcessPool:
                            broken = True
                            res = {
                                "input": it.rel,
                                "status": "error",
                                "seconds": 0.0,
                                "error": "worker process died on this file",
                            }
                        results.append(res)
                        if writer is not None and res["status"] == "clean":
                            writer.add(
                                {
                                    "key": res["key"],
                                    "input": it.rel,
                                    "output_sha256": res.get("output_sha256"),
                                    "status": "clean",
                                    "finished": time.time(),
                                }
                            )
                        bar.advance(it.size, res.get("seconds") or 0.0)
                if broken:  # the others in flight are retried on a new pool
                    pending.extend(running.values())
    finally:
        bar.close()
        if writer is not None:
            writer.close()
    results.sort(key=lambda r: r["input"])
    summ = report.summary(
        results,
        ignored,
        time.perf_counter() - t0,
        _cpu_s() - c0 + sum(r.get("cpu_s") or 0.0 for r in results),
    )
    paths = None if o.dry_run and o.state_dir is None else report.write(state, results, summ)
    return summ, results, paths[0] if paths else None
