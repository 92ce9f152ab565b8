"""Through `masker serve`: a card keyed by RFC 4733 in the awkward shapes real stacks
send (duration-0 first packets, end packets sharing a sequence number, lost end
packets, an SSRC change in the middle of a key) reaches the tokeniser as exactly the
keyed card (it is tokenised), and no telephone-event reaches the agent."""

from __future__ import annotations

import random

from masker.wire.rfc4733 import TelephoneEvent, build_event, digit_event
from tests.support.media import Collector, EventStream, send_paced
from tests.support.serve import MediaCall
from tests.support.sip_client import HOST

KEYS = "4111111111111111#1230#123#"


def awkward_card(seed: int) -> list[bytes]:
    rng = random.Random(seed)
    a = EventStream(ssrc=0x1111)
    b = EventStream(ssrc=0x2222, seq=50000, ts=9_000_000)
    a.audio(10)
    switch = rng.randrange(3, len(KEYS) - 3)
    for i, k in enumerate(KEYS):
        s = a if i < switch else b
        if i == switch:  # the stream changes SSRC in the middle of this key
            code = digit_event(k)
            ts_a = a.ts
            for d in (160, 320):
                a.event(build_event(TelephoneEvent(code, False, 10, d)), ts_a)
            b.audio(0)
            ts_b = b.ts
            for d in (480, 640):
                b.event(build_event(TelephoneEvent(code, False, 10, d)), ts_b)
            for _ in range(3):
                b.event(build_event(TelephoneEvent(code, True, 10, 800)), ts_b)
            b.ts += 800
        else:
            s.press(
                k,
                zero_first=rng.choice([0, 1, 2]),
                ends=rng.choice([0, 3, 3]),
                same_end_seq=rng.random() < 0.5,
            )
        (a if i < switch else b).audio(4)
    b.audio(10)
    return a.packets + b.packets


def test_a_card_keyed_in_awkward_rfc4733_shapes_is_tokenised_and_never_reaches_the_agent(served):
    call = MediaCall(served)
    coll = Collector(call.agent_rtp, (HOST, call.masker_agent_port))
    send_paced(call.caller_rtp, (HOST, call.masker_caller_port), awkward_card(4733))
    rid = served.wait_log("call.invite", trunk_call_id=call.call_id)["call"]
    served.wait_log("capture.event", call=rid, kind="token", timeout=10)
    coll.stop()
    pkts = coll.rtp()
    call.hangup()
    kinds = [
        ln.get("kind")
        for ln in served.lines
        if ln.get("event") == "capture.event" and ln.get("call") == rid
    ]
    before = kinds[: kinds.index("token")]
    assert set(before) == {"progress", "field_started", "complete"}  # nothing invalid
    assert before.count("field_started") == 2  # expiry, CVV after the PAN: none asked again
    assert pkts and {p.payload_type for p in pkts} == {0}
    assert {len(p.payload) for p in pkts} == {160}
