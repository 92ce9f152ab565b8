"""SIP over TLS and TCP through the Kamailio edge (deploy/kamailio) to a real
`masker serve`: trunks call over TLS or TCP, the agent leg reaches the PBX over
TLS (or TCP) through the edge, and in-dialog requests of both legs follow the
edge's Record-Route; on the mutual TLS port only trunks with a certificate of the
trusted CA get through.  kamailio must be installed (`make setup` installs it)."""

from __future__ import annotations

import socket
import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from masker.calls.ids import log_safe_hex
from masker.phones.service_process import ServiceProcess, free_port
from tests.support.cards import SCAN_PAN
from tests.support.edge import Edge, StreamEndpoint, StreamServer, make_certs, server_context
from tests.support.sip_client import HOST, SipMessage, sdp_offer


@dataclass
class Rig:
    edge: Edge
    masker: ServiceProcess
    pbx: StreamServer


def start_rig(workdir: Path, pbx_transport: str) -> Rig:
    """A TLS or TCP PBX, `masker serve` whose agent leg goes to the edge's inner UDP
    port, and the edge in front of both."""
    tls = make_certs(workdir)
    pbx = StreamServer(
        pbx_transport.upper(), server_context(tls) if pbx_transport == "tls" else None
    )
    inner = free_port()
    masker = ServiceProcess(inner, workdir / "masker", media_ports=40, api=False)
    try:
        edge = Edge(workdir, masker.sip_port, inner, pbx.port, pbx_transport)
    except BaseException:
        masker.stop()
        pbx.close()
        raise
    return Rig(edge, masker, pbx)


def stop_rig(rig: Rig) -> None:
    rig.edge.stop()
    rig.masker.stop()
    rig.pbx.close()


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rig]:
    """One edge, masker and PBX (on TLS) for the module."""
    started = start_rig(tmp_path_factory.mktemp("edge"), "tls")
    yield started
    stop_rig(started)


def route_set(msg: SipMessage) -> list[str]:
    """The Record-Route entries of a message, top first."""
    return [r.strip() for rr in msg.all("Record-Route") for r in rr.split(",") if r.strip()]


def contact_uri(msg: SipMessage) -> str:
    return msg.header("Contact").split("<", 1)[1].split(">", 1)[0]


class EdgeCall:
    """One trunk call through the edge: the caller's dialog state and the PBX side."""

    def __init__(self, rig: Rig, caller: StreamEndpoint, port: int, transport: str) -> None:
        self.rig, self.caller = rig, caller
        self.user = "agent" + log_safe_hex(3)
        self.uri = f"sip:{self.user}@{HOST}:{port};transport={transport}"
        self.call_id, self.tag = log_safe_hex(8) + "@trunk", log_safe_hex(4)
        caller.send_raw(
            caller.request(
                "INVITE", self.uri, call_id=self.call_id, from_tag=self.tag, body=sdp_offer(40000)
            )
        )
        self.pbx = rig.pbx.accepted[0] if rig.pbx.accepted else rig.pbx.accept()
        self.invite = self.pbx.expect("INVITE")
        self.pbx.reply(self.invite, 200, body=sdp_offer(41000), to_tag="pbx" + self.tag)
        self.ok = caller.expect(200)
        self.to_tag = self.ok.tag("To")
        self.target = contact_uri(self.ok)
        self.routes = list(reversed(route_set(self.ok)))  # the UAC's route set
        self.send("ACK", cseq=1)

    def send(self, method: str, cseq: int | None = None, **kw: str) -> None:
        """An in-dialog request from the caller along the route set."""
        self.caller.send_raw(
            self.caller.request(
                method, self.target, call_id=self.call_id, from_tag=self.tag, to_tag=self.to_tag,
                cseq=cseq, routes=self.routes, **kw,
            )
        )  # fmt: skip

    def pbx_bye(self) -> None:
        """The PBX hangs up the agent leg: BYE to the masker's Contact along the
        Record-Route of the agent leg's INVITE (the UAS's route set, as received)."""
        inv = self.invite
        self.pbx.send_raw(
            self.pbx.request(
                "BYE", contact_uri(inv), call_id=inv.header("Call-ID"),
                from_tag="pbx" + self.tag, to_tag=inv.tag("From"), cseq=1,
                routes=route_set(inv), from_hdr=untagged(inv.header("To")),
                to_hdr=untagged(inv.header("From")),
            )
        )  # fmt: skip


def untagged(name_addr: str) -> str:
    return name_addr.split(";tag=", 1)[0]


def tls_caller(rig: Rig, version: ssl.TLSVersion | None = None) -> StreamEndpoint:
    return StreamEndpoint.connect(rig.edge.tls_port, "TLS", ctx=rig.edge.client_context(version))


def test_tls_call_reaches_the_pbx_over_tls_and_the_callers_bye_follows(rig):
    caller = tls_caller(rig)
    try:
        call = EdgeCall(rig, caller, rig.edge.tls_port, "tls")
        assert call.invite.uri.startswith(f"sip:{call.user}@{HOST}:{rig.pbx.port}")
        assert call.invite.header("Via").startswith("SIP/2.0/TLS ")  # the agent leg's hop
        assert len(route_set(call.ok)) == 2  # double Record-Route: TLS outside, UDP inside
        call.pbx.expect("ACK")
        call.send("BYE")
        bye = call.pbx.expect("BYE")
        assert bye.header("Call-ID") == call.invite.header("Call-ID")
        call.pbx.reply(bye, 200)
        assert caller.expect(200).method == "BYE"
    finally:
        caller.close()


def test_tcp_call_hung_up_by_the_pbx_reaches_the_caller_over_tcp(rig):
    caller = StreamEndpoint.connect(rig.edge.tcp_port, "TCP")
    try:
        call = EdgeCall(rig, caller, rig.edge.tcp_port, "tcp")
        call.pbx.expect("ACK")
        call.pbx_bye()
        bye = caller.expect("BYE")
        assert bye.header("Call-ID") == call.call_id
        caller.reply(bye, 200)
        assert call.pbx.expect(200).method == "BYE"
    finally:
        caller.close()


def test_agent_leg_over_tcp(tmp_path):
    tcp = start_rig(tmp_path, "tcp")
    caller = tls_caller(tcp)
    try:
        call = EdgeCall(tcp, caller, tcp.edge.tls_port, "tls")
        assert call.invite.header("Via").startswith("SIP/2.0/TCP ")
        call.send("BYE")
        call.pbx.reply(call.pbx.expect("BYE"), 200)
        assert caller.expect(200).method == "BYE"
    finally:
        caller.close()
        stop_rig(tcp)


def test_tls_is_1_2_or_newer(rig):
    caller = tls_caller(rig, ssl.TLSVersion.TLSv1_2)
    try:
        assert caller.tls_version == "TLSv1.2"
    finally:
        caller.close()
    caller = tls_caller(rig)
    try:
        assert caller.tls_version in ("TLSv1.2", "TLSv1.3")
    finally:
        caller.close()


def test_tls_1_1_client_is_refused(rig):
    with pytest.raises(ssl.SSLError) as refused:
        tls_caller(rig, ssl.TLSVersion.TLSv1_1).close()
    assert "PROTOCOL_VERSION" in str(refused.value).upper()  # the edge's alert, not ours


def test_udp_to_the_inner_port_from_anyone_but_the_masker_is_dropped(rig):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as stranger:
        stranger.bind(("127.0.0.2", 0))
        port = stranger.getsockname()[1]
        stranger.sendto(options_ping(f"127.0.0.2:{port}"), (HOST, rig.edge.inner_port))
        stranger.settimeout(0.5)
        with pytest.raises(TimeoutError):
            stranger.recv(65535)


def options_ping(hostport: str) -> bytes:
    return (
        f"OPTIONS sip:pbx@{HOST} SIP/2.0\r\n"
        f"Via: SIP/2.0/UDP {hostport};branch=z9hG4bK{log_safe_hex(6)};rport\r\n"
        f"From: <sip:x@{hostport}>;tag=x\r\nTo: <sip:pbx@{HOST}>\r\n"
        f"Call-ID: {log_safe_hex(8)}\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\n"
        "Content-Length: 0\r\n\r\n"
    ).encode()


def test_info_keys_over_tls_reach_the_masker_and_no_log_has_them(rig):
    caller = tls_caller(rig)
    keys = SCAN_PAN[:8]
    try:
        call = EdgeCall(rig, caller, rig.edge.tls_port, "tls")
        since = len(rig.masker.log_lines)
        for key in keys:
            call.send(
                "INFO", body=f"Signal={key}\r\nDuration=160\r\n", ctype="application/dtmf-relay"
            )
            assert caller.expect(200).method == "INFO"
        rig.masker.wait_log("capture started", since=since)
        call.send("BYE")
        call.pbx.reply(call.pbx.expect("BYE"), 200)
        caller.expect(200)
    finally:
        caller.close()
    logs = rig.edge.log + rig.masker.log_tail(10_000)
    assert "Signal" not in logs
    assert keys not in logs.replace(" ", "")


def test_a_malformed_info_is_not_logged_whole_by_the_edge(rig):
    """Kamailio's core prints a message it cannot parse, body and all; the edge keeps
    its core at CRITICAL so a keypad digit in a broken INFO never reaches its log."""
    body = "Signal=7\r\nDuration=160\r\n"
    trunk = StreamEndpoint.connect(rig.edge.tcp_port, "TCP")
    try:
        broken = trunk.request(
            "INFO", f"sip:x@{HOST}", call_id="broken", from_tag="a", to_tag="b", body=body,
            ctype="application/dtmf-relay",
        ).replace(";rport", ";rport;;=\x01", 1)  # fmt: skip
        trunk.send_raw(broken)
        with pytest.raises(ConnectionError):  # the edge read it and closed the connection
            trunk.recv()
    finally:
        trunk.close()
    time.sleep(0.3)  # its log, had it written one, has reached us
    assert "Signal" not in rig.edge.log


def mtls_options(rig: Rig, cert: tuple[Path, Path] | None) -> SipMessage:
    """An OPTIONS from a trunk on the edge's mutual TLS port presenting `cert`; under
    TLS 1.3 the edge's verdict on the certificate arrives with the first read."""
    trunk = StreamEndpoint.connect(
        rig.edge.mtls_port, "TLS", "trunk", rig.edge.client_context(cert=cert)
    )
    try:
        trunk.send_raw(
            trunk.request("OPTIONS", f"sip:{HOST}", call_id=log_safe_hex(8), from_tag="t")
        )
        return trunk.recv()
    finally:
        trunk.close()


def test_mtls_trunk_with_a_certificate_of_the_trusted_ca_gets_its_request_through(rig):
    answer = mtls_options(rig, rig.edge.client_cert)
    assert answer.code == 200  # the masker's answer, relayed
    call_id = answer.header("Call-ID")
    assert any(f"{call_id}}} " in line and "-> masker" in line for line in rig.edge.lines)


def test_mtls_trunk_with_a_certificate_of_an_untrusted_ca_is_refused_at_the_handshake(
    rig, tmp_path
):
    stranger = make_certs(tmp_path / "stranger")  # its own CA, unknown to the edge
    with pytest.raises(ssl.SSLError) as refused:
        mtls_options(rig, (stranger / "client.pem", stranger / "client.key"))
    assert "UNKNOWN_CA" in str(refused.value).upper()  # the edge's alert


def test_mtls_trunk_without_a_certificate_is_refused_at_the_handshake(rig):
    with pytest.raises(ssl.SSLError) as refused:
        mtls_options(rig, None)
    assert "CERTIFICATE_REQUIRED" in str(refused.value).upper()  # TLS 1.3's alert
