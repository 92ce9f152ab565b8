"""The public projections: what of a call or capture a desktop may ever receive."""

from __future__ import annotations

from masker.api.views import looks_like_pan, public_call, public_capture, public_event
from tests.support.api import TEST_CVV, TEST_EXPIRY, TEST_PAN


def test_public_event_drops_a_stray_pan_whatever_key_carries_it():
    event = {"event": "progress", "field": "pan", "note": f"card {TEST_PAN}", "entered": 16}
    assert public_event(event) == {"type": "progress", "field": "pan", "note": None, "entered": 16}


def test_public_event_drops_card_field_values_and_secret_keys():
    event = {
        "type": "progress",
        "cvv": TEST_CVV,
        "expiry": TEST_EXPIRY,
        "digits": "12",
        "value": "4",
        "fields": [{"field": "cvv", "entered": 3}],
    }
    assert public_event(event) == {"type": "progress", "fields": [{"field": "cvv", "entered": 3}]}


def test_public_event_keeps_a_format_preserving_token_that_fails_luhn():
    fpe = "4111119482731112"  # keeps BIN and last four, fails Luhn by design
    assert public_event({"event": "token", "token": fpe})["token"] == fpe


def test_registry_wrapped_tokeniser_event_is_unwrapped():
    wrapped = {
        "type": "capture",
        "call_id": "c1",
        "event": {"event": "handoff", "status": "approved", "session": "s1"},
    }
    assert public_event(wrapped) == {"type": "handoff", "status": "approved", "session": "s1"}


def test_registry_capture_snapshot_becomes_a_capture_event():
    wrapped = {"type": "capture", "call_id": "c1", "status": {"state": "collecting"}}
    assert public_event(wrapped) == {"type": "capture", "capture": {"state": "collecting"}}


def test_event_without_a_kind_is_dropped():
    assert public_event({"field": "pan"}) is None


def test_public_call_maps_registry_snapshot_and_hides_sip_call_ids():
    snapshot = {
        "id": "c1",
        "agent_id": "a1",
        "state": "connected",
        "connected_at": 10.0,
        "created_at": 9.0,
        "ended_at": None,
        "end_reason": "",
        "capture": None,
        "armed": True,
        "trunk_call_id": "abc@10.0.0.1",
        "agent_call_id": "def@10.0.0.2",
    }
    assert public_call(snapshot) == {
        "id": "c1",
        "agent": "a1",
        "state": "connected",
        "caller": None,
        "started": 10.0,
        "ended": None,
        "end_reason": None,
        "policy": None,
        "armed": True,
        "capture": None,
    }


def test_public_capture_of_no_capture_is_none():
    assert public_capture(None) is None


def test_pan_detection_ignores_grouping_but_needs_luhn():
    assert looks_like_pan("4111 1111-1111 1111")
    assert not looks_like_pan("4111 1111 1111 1112")
    assert not looks_like_pan("order 12345678901")  # 11 digits: too short for a PAN
