"""`masker serve` for the SIP/media tests: the package's ServiceProcess without the
API (unless the test's MASKER_* environment turns it on) and with a PBX SipEndpoint
the test owns; the service's log lines let tests assert on call events (and on
the absence of digits).
"""

from __future__ import annotations

from pathlib import Path

from masker.calls.ids import log_safe_hex
from masker.phones.service_process import ServiceProcess
from tests.support.media import keyed_packets, rtp_socket, send_paced
from tests.support.sip_client import HOST, SipEndpoint, ack_for, sdp_media, sdp_offer


class Served(ServiceProcess):
    """A running `masker serve` with a test-owned PBX endpoint."""

    def __init__(
        self, workdir: Path, env_extra: dict[str, str] | None = None, media_ports: int = 200
    ) -> None:
        self.pbx = SipEndpoint("pbx")
        try:
            super().__init__(
                self.pbx.port, workdir, media_ports=media_ports, api=False, env=env_extra
            )
            self.wait_log("service ready", timeout=20)
        except BaseException:
            self.pbx.close()
            raise

    @property
    def addr(self) -> tuple[str, int]:
        return (HOST, self.sip_port)

    def uri(self, user: str = "agent1") -> str:
        return f"sip:{user}@{HOST}:{self.sip_port}"

    @property
    def lines(self) -> list[dict]:
        return self.log_lines

    @property
    def raw(self) -> list[str]:
        return self.raw_stderr

    def stop(self, timeout: float = 10.0) -> int:
        try:
            return super().stop(timeout)
        finally:
            self.pbx.close()


def answered_call(served: Served, caller: SipEndpoint) -> tuple[str, str, str, str, str]:
    """INVITE -> PBX 200 -> ACK on a fresh agent user; returns
    (uri, caller Call-ID, caller tag, PBX to-tag, agent-leg Call-ID)."""
    user = "agent" + log_safe_hex(3)
    uri, cid, tag = served.uri(user), log_safe_hex(6), "t1"
    caller.send_raw(
        caller.request("INVITE", uri, call_id=cid, from_tag=tag, body=sdp_offer(4000)), served.addr
    )
    inv = served.pbx.expect("INVITE", user=user)
    served.pbx.reply(inv, 200, body=sdp_offer(4100), to_tag="p")
    ok = caller.expect(200)
    caller.send_raw(ack_for(caller, ok, uri, cid, tag), served.addr)
    return uri, cid, tag, ok.tag("To"), inv.header("Call-ID")


class MediaCall:
    """A connected call whose caller and PBX each own an RTP socket."""

    def __init__(self, served: Served):
        self.served = served
        self.sip = SipEndpoint("caller")
        self.caller_rtp = rtp_socket()
        self.agent_rtp = rtp_socket()
        self.user = "agent" + log_safe_hex(4)
        self.uri = served.uri(self.user)
        self.call_id = log_safe_hex(8)
        self.tag = log_safe_hex(4)
        offer = sdp_offer(self.caller_rtp.getsockname()[1], "0 101")
        self.sip.send_raw(
            self.sip.request(
                "INVITE", self.uri, call_id=self.call_id, from_tag=self.tag, body=offer
            ),
            served.addr,
        )
        inv = served.pbx.expect("INVITE", user=self.user)
        self.agent_call_id = inv.header("Call-ID")
        _, self.masker_agent_port, _, _ = sdp_media(inv.body)
        served.pbx.reply(
            inv, 200, to_tag="pbx1", body=sdp_offer(self.agent_rtp.getsockname()[1], "0 101")
        )
        ok = self.sip.expect(200)
        _, self.masker_caller_port, _, _ = sdp_media(ok.body)
        self.sip.send_raw(ack_for(self.sip, ok, self.uri, self.call_id, self.tag), served.addr)
        self.to_tag = ok.tag("To")
        served.pbx.expect("ACK", call_id=self.agent_call_id)

    def key(self, keys: str) -> None:
        """The caller keys `keys` by RFC 4733 only, at a person's pace."""
        send_paced(
            self.caller_rtp,
            (HOST, self.masker_caller_port),
            keyed_packets(keys, inband=False, rfc4733=True),
        )

    def hangup(self) -> None:
        self.sip.send_raw(
            self.sip.request(
                "BYE", self.uri, call_id=self.call_id, from_tag=self.tag, to_tag=self.to_tag
            ),
            self.served.addr,
        )
        self.served.pbx.expect("BYE", call_id=self.agent_call_id)
        self.sip.close()
        self.caller_rtp.close()
        self.agent_rtp.close()
