"""The live feed over a real WebSocket (and the SSE fallback): current state first,
then masked progress, the token and the hand-off result."""

from __future__ import annotations

import asyncio
import json
import urllib.request

from tests.support.api import (
    AGENT_KEY,
    KEYED_CARD,
    TEST_CVV,
    TEST_EXPIRY,
    TEST_PAN,
    http,
    make_jwt,
    ws_collect,
)

API_OPTIONS = {"ws_auth_timeout_s": 1.0}

CAPTURE = {"amount": "9.99", "currency": "GBP", "reference": "ORDER-7"}


def feed_url(api, cid):
    return api.url.replace("http://", "ws://") + f"/api/calls/{cid}/feed"


def started_call(api, agent="agent-1"):
    cid = api.call(agent)
    reply = http("POST", f"{api.url}/api/calls/{cid}/capture", make_jwt(agent), CAPTURE)
    assert reply.status == 201
    return cid


def collect(api, cid, token, until, **kw):
    return asyncio.run(ws_collect(feed_url(api, cid), token, until, **kw))


def has(kind):
    return lambda msgs: any(m.get("type") == kind for m in msgs)


def test_first_message_is_the_current_call_state(api):
    cid = api.call()
    msgs = collect(api, cid, make_jwt(), lambda m: len(m) >= 1)
    assert msgs[0]["type"] == "state" and msgs[0]["call"]["id"] == cid


def test_header_authentication_also_opens_the_feed(api):
    cid = api.call()
    msgs = collect(api, cid, make_jwt(), lambda m: len(m) >= 1, header_auth=True)
    assert msgs[0]["type"] == "state"


def test_progress_events_follow_each_keyed_digit(api):
    cid = started_call(api)
    msgs = collect(
        api,
        cid,
        make_jwt(),
        lambda m: sum(x.get("type") == "progress" for x in m) >= 6,
        on_open=lambda: api.key(cid, TEST_PAN[:6]),
    )
    progress = [m for m in msgs if m.get("type") == "progress" and m.get("field") == "pan"]
    assert [p["entered"] for p in progress][-6:] == [1, 2, 3, 4, 5, 6]
    assert progress[-1]["brand"] == "visa"


def test_completed_card_brings_token_and_handoff(api):
    cid = started_call(api)
    msgs = collect(api, cid, make_jwt(), has("handoff"), on_open=lambda: api.key(cid, KEYED_CARD))
    token = next(m for m in msgs if m.get("type") == "token")
    handoff = next(m for m in msgs if m.get("type") == "handoff")
    assert token["token"].startswith("tok_") and token["display"].endswith("1111")
    assert handoff["status"] == "approved" and handoff["token"] == token["token"]


def test_reconnecting_client_gets_progress_so_far_first(api):
    cid = started_call(api)
    api.key(cid, TEST_PAN[:5])
    msgs = collect(api, cid, make_jwt(), lambda m: len(m) >= 1)
    pan = next(f for f in msgs[0]["call"]["capture"]["fields"] if f["field"] == "pan")
    assert pan["entered"] == 5


def test_feed_never_carries_the_keyed_digits(api):
    cid = started_call(api)
    msgs = collect(api, cid, make_jwt(), has("handoff"), on_open=lambda: api.key(cid, KEYED_CARD))
    text = json.dumps(msgs, ensure_ascii=False)
    assert TEST_PAN not in text and TEST_PAN[:6] not in text
    assert f'"{TEST_EXPIRY}"' not in text and f'"{TEST_CVV}"' not in text


def test_call_end_is_announced_on_the_feed(api):
    cid = api.call()
    msgs = collect(
        api,
        cid,
        make_jwt(),
        lambda m: any(x.get("state") == "ended" for x in m[1:]),
        on_open=lambda: api.registry.end_call(cid),
    )
    assert msgs[-1] == {"type": "call", "state": "ended", "reason": "hangup"}


def test_bad_token_closes_feed_with_4401(api):
    msgs = collect(api, api.call(), "not-a-token", lambda m: any("closed" in x for x in m))
    assert msgs[0]["error"]["code"] == "invalid_credential" and msgs[-1]["closed"] == 4401


def test_silent_client_is_closed_after_auth_timeout(api):
    msgs = collect(api, api.call(), None, lambda m: any("closed" in x for x in m))
    assert msgs[-1]["closed"] == 4401


def test_other_agents_call_closes_feed_with_4404(api):
    msgs = collect(
        api, api.call("agent-2"), make_jwt("agent-1"), lambda m: any("closed" in x for x in m)
    )
    assert msgs[-1]["closed"] == 4404


def test_supervisor_follows_any_call(api):
    cid = api.call("agent-3")
    msgs = collect(api, cid, make_jwt("sup", "supervisor"), lambda m: len(m) >= 1)
    assert msgs[0]["call"]["agent"] == "agent-3"


def test_plain_get_on_feed_is_400_json(api):
    reply = http("GET", f"{api.url}/api/calls/{api.call()}/feed", AGENT_KEY)
    assert reply.status == 400 and reply.json()["error"]["code"] == "websocket_required"


def test_sse_fallback_streams_state_then_progress(api):
    cid = started_call(api)
    req = urllib.request.Request(
        f"{api.url}/api/calls/{cid}/events", headers={"Authorization": f"Bearer {make_jwt()}"}
    )
    with urllib.request.urlopen(req, timeout=10) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        first = _next_sse(resp)
        api.key(cid, "4")
        second = _next_sse(resp)
    assert first["type"] == "state" and second == {**second, "type": "progress", "entered": 1}


def _next_sse(resp) -> dict:
    while True:
        line = resp.readline().decode()
        if line.startswith("data: "):
            return json.loads(line[6:])
