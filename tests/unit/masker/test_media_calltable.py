"""A closed call's media summary: what its end-of-call log line carries."""

from __future__ import annotations

from collections import Counter

from masker.media.calltable import SUMMARY_COUNTERS, media_summary


def test_summary_carries_every_packet_counter_even_when_zero():
    summary = media_summary(Counter(caller_packets=347))
    assert set(SUMMARY_COUNTERS) <= set(summary)
    assert summary["caller_packets"] == 347
    assert summary["underruns"] == 0


def test_summary_carries_every_drop_by_its_reason():
    summary = media_summary(Counter(drop_late=3, drop_unexpected_source=2))
    assert summary["drop_late"] == 3
    assert summary["drop_unexpected_source"] == 2


def test_summary_never_counts_key_presses():
    counters = Counter(digits_inband=16, digits_rfc4733=4, caller_events_swallowed=9)
    summary = media_summary(counters)
    assert not any(name.startswith("digits") or "events" in name for name in summary)
