"""The collector's pauses are measured: each one goes to masker_gc_pause_seconds, and
one longer than half a media tick is logged (it stalls every call's media)."""

from __future__ import annotations

import time

from structlog.testing import capture_logs

from masker.runtime.gc_pauses import LOGGED_PAUSE_S, GcPauseMeter
from masker.runtime.metrics import REGISTRY


def _count(generation: str) -> float:
    value = REGISTRY.get_sample_value("masker_gc_pause_seconds_count", {"generation": generation})
    return value or 0.0


def test_every_collection_is_counted_in_the_histogram_of_its_generation():
    meter = GcPauseMeter()
    before = _count("1")
    meter("start", {"generation": 1})
    meter("stop", {"generation": 1, "collected": 0})
    assert _count("1") == before + 1


def test_a_pause_longer_than_half_a_tick_is_logged_with_its_length():
    meter = GcPauseMeter()
    with capture_logs() as logs:
        meter("start", {"generation": 2})
        time.sleep(LOGGED_PAUSE_S * 1.5)
        meter("stop", {"generation": 2, "collected": 7})
    (entry,) = [e for e in logs if e["event"] == "gc pause"]
    assert entry["generation"] == 2 and entry["ms"] >= LOGGED_PAUSE_S * 1000


def test_a_short_pause_is_not_logged():
    meter = GcPauseMeter()
    with capture_logs() as logs:
        meter("start", {"generation": 0})
        meter("stop", {"generation": 0, "collected": 0})
    assert [e for e in logs if e["event"] == "gc pause"] == []
