"""The lightweight bench phone speaks enough SIP and RTP to call itself.

Pointed at its own agent side (no masker in between), a call is answered,
RTP flows at 50 packets a second, nothing is lost and the timing bursts
arrive with next to no delay: the instrument reads zero when nothing is there.
"""

from __future__ import annotations

import time

import pytest

from masker.phones.lite import LitePhones, close_all, parse_sdp_media, parse_sip


@pytest.fixture(scope="module")
def self_call():
    phones = LitePhones(("127.0.0.1", 0))
    phones.service = ("127.0.0.1", phones.uas_port)
    call = phones.start_call(0)
    end = time.monotonic() + 2.5
    while time.monotonic() < end:
        phones.poll_sip()
        phones.send_media(time.monotonic())
        phones.drain_media()
        time.sleep(0.01)
    yield phones, call
    close_all(phones)


def test_call_to_its_own_agent_side_is_answered(self_call):
    _, call = self_call
    assert call.state == "up"
    assert call.agent_call_id == call.call_id


def test_rtp_flows_at_fifty_packets_a_second_without_loss(self_call):
    _, call = self_call
    assert 100 <= call.rx.packets <= 135
    assert call.rx.lost == 0


def test_timing_bursts_arrive_with_no_added_delay(self_call):
    _, call = self_call
    assert len(call.rx.delays_ms) >= 2
    assert max(call.rx.delays_ms) < 15


def test_packets_that_may_predate_a_wall_clock_step_are_counted_not_timed(self_call, monkeypatch):
    """Arrivals are kernel stamps on the wall clock: a step of it (NTP, a VM's clock
    sync) between two reads would be taken for that much delay of one packet a call."""
    phones, call = self_call
    phones.drain_media()
    phones.send_media(time.monotonic() + 0.04)  # two packets due
    time.sleep(0.01)
    packets, timed, untimed = call.rx.packets, len(call.rx.transit_ms), phones.untimed
    real_time = time.time
    monkeypatch.setattr(time, "time", lambda: real_time() - 0.5)  # steps back 0.5 s
    phones.drain_media()
    assert len(phones.clock_steps) == 1
    assert call.rx.packets - packets == phones.untimed - untimed >= 2
    assert len(call.rx.transit_ms) == timed


def test_sip_parser_expands_compact_headers():
    msg = parse_sip(b"BYE sip:a@b SIP/2.0\r\ni: abc\r\nCSeq: 2 BYE\r\n\r\n")
    assert msg is not None
    assert (msg.method, msg.get("call-id")) == ("BYE", "abc")


def test_sdp_media_address_and_port_are_read():
    body = "v=0\r\nc=IN IP4 127.0.0.9\r\nm=audio 4000 RTP/AVP 0\r\n"
    assert parse_sdp_media(body) == ("127.0.0.9", 4000)
