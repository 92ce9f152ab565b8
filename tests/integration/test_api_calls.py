"""Call and capture control over real HTTP: listing, visibility, capture start/restart/cancel
and the 4xx JSON errors for everything a client can get wrong."""

from __future__ import annotations

import pytest
import structlog.testing

from tests.support.api import TEST_PAN, http, make_jwt

CAPTURE = {"amount": "12.50", "currency": "GBP", "reference": "INV-1001"}


@pytest.fixture
def agent():
    return make_jwt("agent-1")


def field_of(capture, name):
    return next(f for f in capture["fields"] if f["field"] == name)


def start(api, cid, token, body=CAPTURE):
    return http("POST", f"{api.url}/api/calls/{cid}/capture", token, body)


def test_agent_lists_only_the_calls_bound_to_it(api, agent):
    mine, theirs = api.call("agent-1"), api.call("agent-2")
    ids = {c["id"] for c in http("GET", f"{api.url}/api/calls", agent).json()["calls"]}
    assert mine in ids and theirs not in ids


def test_supervisor_lists_every_call(api):
    mine, theirs = api.call("agent-1"), api.call("agent-2")
    reply = http("GET", f"{api.url}/api/calls", make_jwt("sup-1", "supervisor"))
    ids = {c["id"] for c in reply.json()["calls"]}
    assert {mine, theirs} <= ids


def test_call_state_names_agent_and_state(api, agent):
    cid = api.call("agent-1")
    call = http("GET", f"{api.url}/api/calls/{cid}", agent).json()
    assert (call["id"], call["agent"], call["state"], call["capture"]) == (
        cid,
        "agent-1",
        "connected",
        None,
    )


def test_call_of_another_agent_is_not_found(api, agent):
    cid = api.call("agent-2")
    reply = http("GET", f"{api.url}/api/calls/{cid}", agent)
    assert reply.status == 404 and reply.json()["error"]["code"] == "unknown_call"


def test_unknown_call_is_404_json(api, agent):
    reply = http("GET", f"{api.url}/api/calls/does-not-exist", agent)
    assert reply.status == 404 and reply.json()["error"]["code"] == "unknown_call"


def test_start_capture_returns_201_with_public_status(api, agent):
    cid = api.call()
    reply = start(api, cid, agent)
    assert reply.status == 201
    capture = reply.json()["capture"]
    assert capture["state"] == "collecting" and capture["reference"] == "INV-1001"


def test_double_start_is_409(api, agent):
    cid = api.call()
    start(api, cid, agent)
    reply = start(api, cid, agent)
    assert reply.status == 409 and reply.json()["error"]["code"] == "capture_conflict"


def test_capture_on_ended_call_is_409(api, agent):
    cid = api.call()
    api.registry.end_call(cid)
    reply = start(api, cid, agent)
    assert reply.status == 409 and reply.json()["error"]["code"] == "call_ended"


def test_malformed_json_is_400(api, agent):
    cid = api.call()
    reply = http("POST", f"{api.url}/api/calls/{cid}/capture", agent, raw=b'{"amount": ')
    assert reply.status == 400 and reply.json()["error"]["code"] == "malformed_json"


@pytest.mark.parametrize(
    "body",
    [
        {**CAPTURE, "amount": 12.5},
        {**CAPTURE, "amount": "-1"},
        {**CAPTURE, "amount": "0"},
        {**CAPTURE, "currency": "pounds"},
        {**CAPTURE, "reference": ""},
        {**CAPTURE, "fields": "pan"},
        {**CAPTURE, "fields": ["pan", "pan"]},
        {**CAPTURE, "fields": ["iban"]},
        {**CAPTURE, "extra": 1},
        ["not", "an", "object"],
    ],
    ids=[
        "number-amount",
        "negative",
        "zero",
        "currency",
        "empty-ref",
        "fields-string",
        "dup-fields",
        "unknown-field",
        "extra-key",
        "array-body",
    ],
)
def test_wrong_types_are_400(api, agent, body):
    reply = start(api, api.call(), agent, body)
    assert reply.status == 400 and reply.json()["error"]["code"] == "invalid_request"


def test_reference_holding_a_card_number_is_refused(api, agent):
    reply = start(api, api.call(), agent, {**CAPTURE, "reference": f"card {TEST_PAN}"})
    assert reply.status == 400
    assert TEST_PAN not in reply.body.decode()


def test_oversize_body_is_413(api, agent):
    reply = http(
        "POST",
        f"{api.url}/api/calls/{api.call()}/capture",
        agent,
        raw=b'{"reference": "' + b"x" * 10000 + b'"}',
    )
    assert reply.status == 413


def test_supervisor_cannot_start_a_capture(api):
    reply = start(api, api.call("agent-1"), make_jwt("sup-1", "supervisor"))
    assert reply.status == 403 and reply.json()["error"]["code"] == "forbidden"


def test_agent_cannot_start_capture_on_another_agents_call(api, agent):
    reply = start(api, api.call("agent-2"), agent)
    assert reply.status == 404


def test_keyed_digits_show_as_masked_progress_in_call_state(api, agent):
    cid = api.call()
    start(api, cid, agent)
    api.key(cid, TEST_PAN[:6])
    capture = http("GET", f"{api.url}/api/calls/{cid}/capture", agent).json()["capture"]
    pan = field_of(capture, "pan")
    assert pan["entered"] == 6 and set(pan["display"]) <= {"•", " "}


def test_restart_field_clears_its_progress(api, agent):
    cid = api.call()
    start(api, cid, agent)
    api.key(cid, "4111")
    reply = http("POST", f"{api.url}/api/calls/{cid}/capture/restart", agent, {"field": "pan"})
    assert reply.status == 200 and field_of(reply.json()["capture"], "pan")["entered"] == 0


def test_restart_without_capture_is_409(api, agent):
    reply = http(
        "POST", f"{api.url}/api/calls/{api.call()}/capture/restart", agent, {"field": "pan"}
    )
    assert reply.status == 409


def test_restart_of_unknown_field_is_400(api, agent):
    cid = api.call()
    start(api, cid, agent)
    reply = http("POST", f"{api.url}/api/calls/{cid}/capture/restart", agent, {"field": "pin"})
    assert reply.status == 400


def test_cancel_ends_the_capture_and_allows_a_new_one(api, agent):
    cid = api.call()
    start(api, cid, agent)
    cancelled = http("DELETE", f"{api.url}/api/calls/{cid}/capture", agent)
    assert cancelled.status == 200 and cancelled.json()["capture"]["state"] == "cancelled"
    assert start(api, cid, agent).status == 201


def test_cancel_without_capture_is_409(api, agent):
    reply = http("DELETE", f"{api.url}/api/calls/{api.call()}/capture", agent)
    assert reply.status == 409


def test_unknown_path_is_404_json(api, agent):
    reply = http("GET", f"{api.url}/api/nothing-here", agent)
    assert reply.status == 404 and reply.json()["error"]["code"] == "not_found"


def test_wrong_method_is_405_json_with_allow(api, agent):
    reply = http("PUT", f"{api.url}/api/calls", agent, {})
    assert reply.status == 405 and "GET" in reply.headers["Allow"]
    assert reply.json()["error"]["code"] == "method_not_allowed"


def test_api_responses_are_not_cached(api, agent):
    reply = http("GET", f"{api.url}/api/calls", agent)
    assert reply.headers["Cache-Control"] == "no-store"


def test_retry_without_a_failed_hand_off_is_409(api, agent):
    cid = api.call("agent-1")
    assert start(api, cid, agent).status == 201
    reply = http("POST", f"{api.url}/api/calls/{cid}/capture/retry", agent)
    assert reply.status == 409 and reply.json()["error"]["code"] == "capture_conflict"


def test_supervisor_may_not_retry_a_hand_off(api):
    cid = api.call("agent-1")
    supervisor = make_jwt("sup-1", "supervisor")
    reply = http("POST", f"{api.url}/api/calls/{cid}/capture/retry", supervisor)
    assert reply.status == 403


def test_retry_on_another_agents_call_is_404(api, agent):
    cid = api.call("agent-2")
    assert http("POST", f"{api.url}/api/calls/{cid}/capture/retry", agent).status == 404


def end_payment(api, cid, token):
    return http("POST", f"{api.url}/api/calls/{cid}/payment/end", token)


def test_capture_arms_a_capture_policy_call(api, agent):
    cid = api.call(policy="capture")
    armed_before = http("GET", f"{api.url}/api/calls/{cid}", agent).json()["armed"]
    start(api, cid, agent)
    assert (armed_before, http("GET", f"{api.url}/api/calls/{cid}", agent).json()["armed"]) == (
        False,
        True,
    )


def test_cancelled_capture_leaves_the_call_armed(api, agent):
    cid = api.call(policy="capture")
    start(api, cid, agent)
    http("DELETE", f"{api.url}/api/calls/{cid}/capture", agent)
    assert http("GET", f"{api.url}/api/calls/{cid}", agent).json()["armed"] is True


def test_agent_ends_the_payment_phase_and_the_call_is_disarmed(api, agent):
    cid = api.call(policy="capture")
    start(api, cid, agent)
    http("DELETE", f"{api.url}/api/calls/{cid}/capture", agent)
    reply = end_payment(api, cid, agent)
    assert reply.status == 200 and (reply.json()["id"], reply.json()["armed"]) == (cid, False)


def test_ending_the_payment_phase_while_the_caller_keys_is_409(api, agent):
    cid = api.call(policy="capture")
    start(api, cid, agent)
    reply = end_payment(api, cid, agent)
    assert reply.status == 409 and reply.json()["error"]["code"] == "capture_conflict"


def test_ending_the_payment_phase_of_an_always_masked_call_is_409(api, agent):
    assert end_payment(api, api.call(), agent).status == 409


def test_supervisor_may_not_end_the_payment_phase(api):
    cid = api.call("agent-1", policy="capture")
    assert end_payment(api, cid, make_jwt("sup-1", "supervisor")).status == 403


def test_payment_phase_of_another_agents_call_is_404(api, agent):
    assert end_payment(api, api.call("agent-2", policy="capture"), agent).status == 404


def test_capture_control_actions_are_audited_with_the_agent_and_no_card_data(api, agent):
    cid = api.call(policy="capture")
    with structlog.testing.capture_logs() as logs:
        start(api, cid, agent)
        api.key(cid, TEST_PAN)
        http("DELETE", f"{api.url}/api/calls/{cid}/capture", agent)
        end_payment(api, cid, agent)
    audited = [(e["action"], e["call"], e["agent"]) for e in logs if e["event"] == "agent action"]
    assert audited == [
        ("start_capture", cid, "agent-1"),
        ("cancel_capture", cid, "agent-1"),
        ("end_payment_phase", cid, "agent-1"),
    ]
    assert TEST_PAN[:6] not in repr(logs)
