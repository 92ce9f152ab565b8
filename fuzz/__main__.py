"""`python -m fuzz [TARGET...] [--seconds N]`: fuzz each target for a time budget.

Each target runs in its own libFuzzer process, seeded from fuzz/corpus/<target>/
and fuzz/regressions/<target>/ (new inputs go to a scratch folder, so the
committed corpus only grows by hand).  Prints executions, coverage and
features reached per target; a crash leaves its input under fuzz/crashes/ and
makes the exit status 1.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from fuzz.targets import TARGETS

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "corpus"
REGRESSIONS = HERE / "regressions"
CRASHES = HERE / "crashes"
_STATS = re.compile(r"cov: (\d+) ft: (\d+)")
_DONE = re.compile(r"Done (\d+) runs in (\d+) second")


@dataclass(frozen=True)
class FuzzRun:
    target: str
    executions: int
    seconds: int
    coverage: int
    features: int
    crashed: bool

    def row(self) -> str:
        rate = self.executions / max(self.seconds, 1)
        verdict = "CRASH" if self.crashed else "ok"
        return (
            f"{self.target:<12} {self.executions:>10,} {rate:>9,.0f}/s "
            f"{self.coverage:>6} {self.features:>7}  {verdict}"
        )


def fuzz_one(target: str, seconds: int) -> FuzzRun:
    """Run libFuzzer on one target for `seconds`; its figures from libFuzzer's output."""
    CRASHES.mkdir(exist_ok=True)
    seeds = [str(d) for d in (CORPUS / target, REGRESSIONS / target) if d.is_dir()]
    with tempfile.TemporaryDirectory(prefix=f"fuzz-{target}-") as scratch:
        cmd = [
            sys.executable, "-m", "fuzz.worker", target,
            f"-max_total_time={seconds}", "-rss_limit_mb=2048", "-timeout=10",
            f"-artifact_prefix={CRASHES}/{target}-", scratch, *seeds,
        ]  # fmt: skip
        done = subprocess.run(
            cmd, capture_output=True, text=True, cwd=HERE.parent, timeout=seconds + 120,
            check=False,
        )  # fmt: skip
    log = done.stdout + done.stderr
    stats = _STATS.findall(log)
    runs = _DONE.search(log)
    coverage, features = map(int, stats[-1]) if stats else (0, 0)
    return FuzzRun(
        target=target,
        executions=int(runs.group(1)) if runs else 0,
        seconds=int(runs.group(2)) if runs else seconds,
        coverage=coverage,
        features=features,
        crashed=done.returncode != 0,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m fuzz", description=__doc__)
    parser.add_argument(
        "targets", nargs="*", metavar="TARGET",
        help=f"targets to run (default: all of {', '.join(TARGETS)})",
    )  # fmt: skip
    parser.add_argument("--seconds", type=int, default=60, help="budget per target")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.targets) - set(TARGETS))
    if unknown:
        parser.error(f"unknown target(s): {', '.join(unknown)}")
    print(f"{'target':<12} {'executions':>10} {'rate':>11} {'cov':>6} {'ft':>7}")
    failed = False
    for target in args.targets or list(TARGETS):
        run = fuzz_one(target, args.seconds)
        print(run.row(), flush=True)
        failed |= run.crashed
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
