"""Which agent's desktop sees and drives a call is named by the contact-centre side
only: the PBX's 2xx answer (`[pbx] agent_id_header`) or, when it names nobody, the
agent leg's Request-URI user (`[pbx] agent_id_request_uri`).  An agent id header in
the caller's INVITE is never read.  Real `masker serve` with its API; a scripted
trunk and PBX over loopback; the binding is read back as the supervisor sees it."""

from __future__ import annotations

import secrets
import string
from pathlib import Path

import pytest

from masker.phones.service_process import ServiceProcess
from tests.support.sip_client import HOST, SipEndpoint, ack_for, sdp_offer


def letters_id() -> str:
    """A Call-ID without digit runs (the log redacts Luhn-valid runs, and tests find
    their call's log lines by it)."""
    return "".join(secrets.choice(string.ascii_lowercase) for _ in range(20))


class ApiServed(ServiceProcess):
    """`masker serve` with its API and a test-owned PBX endpoint."""

    def __init__(self, workdir: Path, env: dict[str, str] | None = None):
        self.pbx = SipEndpoint("pbx")
        try:
            super().__init__(self.pbx.port, workdir, media_ports=40, api=True, env=env)
            self.wait_log("service ready", timeout=20)
        except BaseException:
            self.pbx.close()
            raise

    def stop(self, timeout: float = 10.0) -> int:
        try:
            return super().stop(timeout)
        finally:
            self.pbx.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    s = ApiServed(tmp_path_factory.mktemp("agent-id"))
    yield s
    s.stop()


class Setup:
    """A call from the trunk to `user` carrying `caller_headers`, up to the PBX's INVITE."""

    def __init__(self, served: ApiServed, user: str, caller_headers: str = ""):
        self.served, self.pbx = served, served.pbx
        self.caller = SipEndpoint("caller")
        self.uri = f"sip:{user}@{served.uri_host}"
        self.call_id, self.tag = letters_id(), secrets.token_hex(4)
        self.caller.send_raw(
            self.caller.request(
                "INVITE",
                self.uri,
                call_id=self.call_id,
                from_tag=self.tag,
                body=sdp_offer(40000),
                extra=caller_headers,
            ),
            (HOST, served.sip_port),
        )
        self.invite = self.pbx.expect("INVITE", user=user)
        self.rid = served.wait_log("call.invite", trunk_call_id=self.call_id)["call"]

    def answer(self, pbx_headers: str = "") -> None:
        self.pbx.reply(self.invite, 200, body=sdp_offer(41000), to_tag="pbx1", extra=pbx_headers)
        ok = self.caller.expect(200)
        self.to_tag = ok.tag("To")
        self.caller.send_raw(
            ack_for(self.caller, ok, self.uri, self.call_id, self.tag), (HOST, self.served.sip_port)
        )
        self.served.wait_log("call.connected", call=self.rid)

    def agent(self) -> str | None:
        """The agent of the one live call, as the supervisor sees it (found by listing:
        a registry id, like any hex run, may be redacted in the log lines)."""
        live = [c for c in self.served.api_get("/api/calls")["calls"] if c["state"] != "ended"]
        assert len(live) == 1
        return live[0]["agent"]

    def hang_up(self) -> None:
        self.caller.send_raw(
            self.caller.request(
                "BYE", self.uri, call_id=self.call_id, from_tag=self.tag, to_tag=self.to_tag
            ),
            (HOST, self.served.sip_port),
        )
        self.pbx.reply(self.pbx.expect("BYE", call_id=self.invite.header("Call-ID")), 200)
        self.caller.close()


def test_agent_named_in_the_pbx_answer_gets_the_call(served):
    call = Setup(served, "2001", "X-Agent-Id: agent-77")
    call.answer("X-Agent-Id: agent-42")
    try:
        assert call.agent() == "agent-42"
    finally:
        call.hang_up()


def test_caller_agent_id_header_does_not_choose_the_agent(served):
    call = Setup(served, "2002", "X-Agent-Id: agent-77")
    call.answer()
    try:
        assert call.agent() == "2002"  # the agent leg's Request-URI user, not the caller's pick
    finally:
        call.hang_up()


def test_caller_agent_id_header_is_not_sent_to_the_pbx(served):
    call = Setup(served, "2003", "x-AGENT-id: agent-77")
    call.answer()
    try:
        assert call.invite.all("X-Agent-Id") == []
    finally:
        call.hang_up()


def test_ringing_call_is_bound_to_no_agent(served):
    call = Setup(served, "2004", "X-Agent-Id: agent-77")
    served.pbx.reply(call.invite, 180, to_tag="pbx1", extra="X-Agent-Id: agent-42")
    call.caller.expect(180)
    try:
        assert call.agent() is None
    finally:
        call.answer()
        call.hang_up()


def test_unusable_agent_id_in_the_answer_binds_no_agent(served):
    call = Setup(served, "2005")
    call.answer("X-Agent-Id: agent-1\r\nX-Agent-Id: agent-2")
    try:
        assert call.agent() is None  # two different agents named: neither, nor the URI user
    finally:
        call.hang_up()


def test_without_request_uri_fallback_an_answer_naming_nobody_binds_no_agent(tmp_path):
    served = ApiServed(tmp_path, env={"MASKER_PBX_AGENT_ID_REQUEST_URI": "false"})
    try:
        call = Setup(served, "2006", "X-Agent-Id: agent-77")
        call.answer()
        assert call.agent() is None
        call.hang_up()
    finally:
        served.stop()
