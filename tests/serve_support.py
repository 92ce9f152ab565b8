"""`masker serve` for the SIP/media tests: the package's ServiceProcess without the
API (unless the test's MASKER_* environment turns it on) and with a PBX SipEndpoint
the test owns; the service's log lines let tests assert on call events (and on
the absence of digits).
"""

from __future__ import annotations

import secrets
from pathlib import Path

from sipclient import HOST, SipEndpoint, ack_for, sdp_offer

from masker.phones.service_process import ServiceProcess


class Served(ServiceProcess):
    """A running `masker serve` with a test-owned PBX endpoint."""

    def __init__(self, workdir: Path, env_extra: dict[str, str] | None = None,
                 media_ports: int = 200) -> None:
        self.pbx = SipEndpoint("pbx")
        try:
            super().__init__(self.pbx.port, workdir, media_ports=media_ports, api=False,
                             env=env_extra)
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
    user = "agent" + secrets.token_hex(3)
    uri, cid, tag = served.uri(user), secrets.token_hex(6), "t1"
    caller.send_raw(caller.request("INVITE", uri, call_id=cid, from_tag=tag,
                                   body=sdp_offer(4000)), served.addr)
    inv = served.pbx.expect("INVITE", user=user)
    served.pbx.reply(inv, 200, body=sdp_offer(4100), to_tag="p")
    ok = caller.expect(200)
    caller.send_raw(ack_for(caller, ok, uri, cid, tag), served.addr)
    return uri, cid, tag, ok.tag("To"), inv.header("Call-ID")
