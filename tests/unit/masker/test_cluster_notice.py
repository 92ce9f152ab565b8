"""The NOTIFY payload between nodes: what goes in comes out, and it always fits."""

from __future__ import annotations

from masker.api.views import public_event
from masker.cluster.directory import view_of
from masker.cluster.notice import MAX_PAYLOAD_BYTES, Notice, decode, encode
from masker.cluster.reaper import lost_event


def test_a_feed_event_comes_out_as_it_went_in():
    event = {"type": "progress", "field": "pan", "entered": 4, "brand": "visa"}
    assert decode(encode("node-a", "c1", event)) == Notice("node-a", "c1", event)


def test_an_event_too_big_for_notify_becomes_a_refresh_that_fits():
    event = {"type": "capture", "capture": {"reference": "x" * 9000}}
    payload = encode("node-a", "c1", event)
    assert len(payload.encode()) <= MAX_PAYLOAD_BYTES
    assert decode(payload) == Notice("node-a", "c1", None)


def test_payloads_that_are_not_notices_are_ignored():
    for payload in (
        "",
        "[]",
        "{}",
        '{"node": "a", "call": ""}',
        '{"node": "a", "call": "c", "event": {"no_type": 1}}',
        "not json",
    ):
        assert decode(payload) is None


def test_the_lost_event_is_what_the_feed_sends_when_a_call_ends():
    ended = {"type": "call", "call_id": "c1", "state": "ended", "reason": "lost"}
    assert public_event(ended) == lost_event()


def test_a_directory_row_ended_by_the_reaper_reads_as_ended_and_lost():
    stored = {"id": "c1", "agent": "a", "state": "connected", "ended": None, "end_reason": None}
    row = {"call_id": "c1", "state": "ended", "end_reason": "lost", "ended": 5.0, "public": stored}
    assert view_of(row) == {**stored, "state": "ended", "ended": 5.0, "end_reason": "lost"}
