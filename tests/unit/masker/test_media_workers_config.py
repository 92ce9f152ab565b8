"""`[media] workers`: "auto", a bare number or a numeric string; anything else refused."""

from __future__ import annotations

import os

import pytest

from masker.errors import UserError
from masker.media.workers import worker_count
from masker.runtime.service_config import load_config


@pytest.mark.parametrize("line", ["workers = 2", 'workers = "2"'])
def test_a_number_of_workers_is_taken_bare_or_quoted(tmp_path, line):
    path = tmp_path / "m.toml"
    path.write_text(f"[media]\n{line}\n")
    assert worker_count(load_config(path, env={}).media.workers) == 2


def test_auto_is_one_worker_per_core_the_service_may_use():
    cfg = load_config(None, env={"MASKER_MEDIA_WORKERS": "auto"})
    assert worker_count(cfg.media.workers) == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("value", ["-1", "many", "65", "1.5"])
def test_anything_else_is_refused(value):
    with pytest.raises(UserError, match="workers"):
        load_config(None, env={"MASKER_MEDIA_WORKERS": value})
