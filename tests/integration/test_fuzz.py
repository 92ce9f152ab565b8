"""Fuzz targets: every committed input is refused cleanly, and a short libFuzzer run finds nothing.

The seed corpora and the regression inputs (crashes found earlier, now fixed)
replay through each target in-process; CI then fuzzes every target for a short,
fixed budget (`make fuzz` runs the long one).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fuzz.targets import TARGETS
from masker.errors import UserError
from masker.runtime.service_config import load_config
from tests.support.paths import PROJECT_ROOT

ROOT = PROJECT_ROOT
FUZZ = ROOT / "fuzz"
CI_SECONDS = 2


def _inputs(target: str) -> list[Path]:
    dirs = (FUZZ / "corpus" / target, FUZZ / "regressions" / target)
    return sorted(p for d in dirs if d.is_dir() for p in d.iterdir())


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_committed_input_is_refused_or_parsed_without_an_error(target: str) -> None:
    inputs = _inputs(target)
    assert inputs, f"no seed corpus for {target}"
    for path in inputs:
        TARGETS[target](path.read_bytes())


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_a_short_fuzzing_run_finds_no_crash(target: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fuzz", "--seconds", str(CI_SECONDS), target],
        capture_output=True, text=True, cwd=ROOT, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    executions = int(done.stdout.splitlines()[-1].split()[1].replace(",", ""))
    assert executions > 0


def test_a_config_file_that_is_not_utf8_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes((FUZZ / "regressions" / "config_toml" / "non-utf8-config.toml").read_bytes())
    with pytest.raises(UserError, match="not UTF-8"):
        load_config(path, env={})
