"""Twenty concurrent calls through `masker serve`: all set up, masked, torn down,
with no RTP port or media state left behind."""

from __future__ import annotations

import secrets
import signal
import time

import pytest

from dsp.testsignals import keys_signal
from tests.support.media import audio_packets, rtp_socket
from tests.support.serve import Served
from tests.support.sip_client import HOST, SipEndpoint, ack_for, sdp_media, sdp_offer

N_CALLS = 20


@pytest.fixture
def served(tmp_path):
    s = Served(tmp_path)
    yield s
    s.stop()


def test_twenty_concurrent_calls_are_masked_and_leave_nothing_behind(served):
    calls = []
    for _ in range(N_CALLS):
        sip, c_rtp, a_rtp = SipEndpoint("caller"), rtp_socket(), rtp_socket()
        user, cid, tag = "agent" + secrets.token_hex(3), secrets.token_hex(6), "t"
        uri = served.uri(user)
        sip.send_raw(
            sip.request(
                "INVITE",
                uri,
                call_id=cid,
                from_tag=tag,
                body=sdp_offer(c_rtp.getsockname()[1], "0 101"),
            ),
            served.addr,
        )
        inv = served.pbx.expect("INVITE", user=user)
        served.pbx.reply(inv, 200, to_tag="p", body=sdp_offer(a_rtp.getsockname()[1], "0 101"))
        ok = sip.expect(200)
        sip.send_raw(ack_for(sip, ok, uri, cid, tag), served.addr)
        calls.append(
            dict(
                sip=sip,
                c_rtp=c_rtp,
                a_rtp=a_rtp,
                uri=uri,
                cid=cid,
                tag=tag,
                to_tag=ok.tag("To"),
                agent_cid=inv.header("Call-ID"),
                port=sdp_media(ok.body)[1],
            )
        )
    pcm = keys_signal("4111111111111111", on_ms=60, off_ms=60, lead_ms=100).pcm16(None)
    streams = [audio_packets(pcm, ssrc=i + 1) for i in range(N_CALLS)]
    for c in calls:
        c["a_rtp"].settimeout(0.001)
    t0 = time.monotonic()
    for i in range(len(streams[0])):
        for c, pkts in zip(calls, streams, strict=True):
            c["c_rtp"].sendto(pkts[i], (HOST, c["port"]))
        delay = t0 + (i + 1) * 0.02 - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    time.sleep(0.3)
    received = []
    for c in calls:
        n = 0
        c["a_rtp"].settimeout(0.05)
        try:
            while True:
                c["a_rtp"].recv(2048)
                n += 1
        except TimeoutError:
            pass
        received.append(n)
    for c in calls:
        c["sip"].send_raw(
            c["sip"].request(
                "BYE", c["uri"], call_id=c["cid"], from_tag=c["tag"], to_tag=c["to_tag"]
            ),
            served.addr,
        )
        bye = served.pbx.expect("BYE", call_id=c["agent_cid"])
        served.pbx.reply(bye, 200)
        c["sip"].expect(200)
        for k in ("sip", "c_rtp", "a_rtp"):
            c[k].close()
    assert min(received) >= len(streams[0]) - 10
    served.wait_log("call.ended")
    time.sleep(0.3)
    served.proc.send_signal(signal.SIGUSR1)
    stats = served.wait_log("stats", timeout=3)
    assert stats["calls"] == 0 and stats["ports_in_use"] == 0
    assert stats.get("digits_inband", 0) == 16 * N_CALLS
    assert served.alive()
