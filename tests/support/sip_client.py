"""A tiny scripted SIP endpoint over UDP for signalling tests: raw messages in,
parsed messages out.  It plays the trunk (UAC) or the PBX (UAS) around a
`masker serve` subprocess; nothing here is clever, so a test reads as the
message flow it checks."""

from __future__ import annotations

import secrets
import socket
import time
from dataclasses import dataclass, field

HOST = "127.0.0.1"


@dataclass
class SipMessage:
    start: str
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: str = ""
    source: tuple[str, int] | None = None

    @property
    def is_response(self) -> bool:
        return self.start.startswith("SIP/2.0 ")

    @property
    def code(self) -> int:
        return int(self.start.split()[1]) if self.is_response else 0

    @property
    def method(self) -> str:
        if self.is_response:
            return self.header("CSeq").split()[1]
        return self.start.split()[0]

    @property
    def uri(self) -> str:
        return self.start.split()[1]

    def header(self, name: str, default: str = "") -> str:
        vals = self.all(name)
        return vals[0] if vals else default

    def all(self, name: str) -> list[str]:
        compact = {
            "i": "call-id",
            "f": "from",
            "t": "to",
            "v": "via",
            "m": "contact",
            "l": "content-length",
            "c": "content-type",
        }
        name = name.lower()
        return [v for k, v in self.headers if compact.get(k.lower(), k.lower()) == name]

    def tag(self, name: str) -> str | None:
        for part in self.header(name).split(";")[1:]:
            k, _, v = part.strip().partition("=")
            if k == "tag":
                return v
        return None


def parse(data: bytes, source=None) -> SipMessage:
    text = data.decode()
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    msg = SipMessage(lines[0], source=source, body=body)
    for line in lines[1:]:
        k, _, v = line.partition(":")
        msg.headers.append((k.strip(), v.strip()))
    return msg


def sdp_offer(
    port: int, pts: str = "0 8 101", addr: str = HOST, extra: str = "", version: int = 1
) -> str:
    names = {
        "0": "PCMU/8000",
        "8": "PCMA/8000",
        "101": "telephone-event/8000",
        "18": "G729/8000",
        "9": "G722/8000",
        "96": "opus/48000/2",
    }
    lines = [
        "v=0",
        f"o=test 1 {version} IN IP4 {addr}",
        "s=-",
        f"c=IN IP4 {addr}",
        "t=0 0",
        f"m=audio {port} RTP/AVP {pts}",
    ]
    lines += [f"a=rtpmap:{pt} {names[pt]}" for pt in pts.split()]
    if "101" in pts.split():
        lines.append("a=fmtp:101 0-16")
    lines.append("a=ptime:20")
    body = "\r\n".join(lines) + "\r\n" + extra
    return body


def sdp_media(body: str) -> tuple[str, int, list[str], list[str]]:
    """(connection address, audio port, formats, attribute lines) of an SDP body."""
    addr, port, fmts, attrs = "", 0, [], []
    for line in body.replace("\r\n", "\n").split("\n"):
        if line.startswith("c="):
            addr = line.split()[-1]
        elif line.startswith("m=audio"):
            parts = line.split()
            port, fmts = int(parts[1]), parts[3:]
        elif line.startswith("a="):
            attrs.append(line[2:])
    return addr, port, fmts, attrs


class SipEndpoint:
    """One UDP socket on 127.0.0.1 that sends raw SIP and receives parsed SIP."""

    def __init__(self, user: str = "test") -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((HOST, 0))
        self.port = self.sock.getsockname()[1]
        self.user = user
        self.cseq = 1

    def close(self) -> None:
        self.sock.close()

    def send_raw(self, data: bytes | str, dest: tuple[str, int]) -> None:
        self.sock.sendto(data.encode() if isinstance(data, str) else data, dest)

    def recv(self, timeout: float = 3.0, skip_100: bool = True) -> SipMessage:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no SIP message")
            self.sock.settimeout(left)
            data, src = self.sock.recvfrom(65535)
            try:
                msg = parse(data, src)
            except (UnicodeDecodeError, ValueError, IndexError):
                continue  # a stray RTP packet for a port this socket reused: not SIP
            if skip_100 and msg.is_response and msg.code == 100:
                continue
            return msg

    def expect(
        self,
        want: int | str,
        timeout: float = 3.0,
        call_id: str | None = None,
        user: str | None = None,
    ) -> SipMessage:
        """The next message that is the wanted response code or request method (of the
        given Call-ID, or with the given Request-URI user); others are skipped, and
        BYE/INFO requests of other dialogs are answered 200 so they stop retransmitting."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self.recv(max(deadline - time.monotonic(), 0.01))
            mine = (call_id is None or msg.header("Call-ID") == call_id) and (
                user is None or (not msg.is_response and msg.uri.startswith(f"sip:{user}@"))
            )
            if mine and (
                (isinstance(want, int) and msg.is_response and msg.code == want)
                or (isinstance(want, str) and not msg.is_response and msg.method == want)
            ):
                return msg
            if (
                not msg.is_response
                and msg.method in ("BYE", "INFO")
                and (not mine or msg.method != want)
            ):
                self.reply(msg, 200)

    def no_message(self, timeout: float = 0.5) -> bool:
        try:
            self.recv(timeout, skip_100=False)
        except TimeoutError:
            return True
        return False

    def via(self) -> str:
        return f"SIP/2.0/UDP {HOST}:{self.port};branch=z9hG4bK{secrets.token_hex(8)};rport"

    def request(
        self,
        method: str,
        uri: str,
        *,
        call_id: str,
        from_tag: str,
        to_tag: str | None = None,
        cseq: int | None = None,
        body: str = "",
        ctype: str = "application/sdp",
        extra: str = "",
        via: str | None = None,
        cseq_method: str | None = None,
    ) -> str:
        to = f"<{uri}>" + (f";tag={to_tag}" if to_tag else "")
        if cseq is None:
            cseq = self.cseq
            self.cseq += 1
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: {via or self.via()}",
            f"From: <sip:{self.user}@{HOST}:{self.port}>;tag={from_tag}",
            f"To: {to}",
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {cseq_method or method}",
            f"Contact: <sip:{self.user}@{HOST}:{self.port}>",
            "Max-Forwards: 70",
        ]
        if extra:
            lines += [ln for ln in extra.split("\r\n") if ln]
        if body:
            lines.append(f"Content-Type: {ctype}")
        lines.append(f"Content-Length: {len(body.encode())}")
        return "\r\n".join(lines) + "\r\n\r\n" + body

    def reply(
        self,
        req: SipMessage,
        code: int,
        reason: str = "",
        body: str = "",
        to_tag: str | None = None,
        extra: str = "",
    ) -> None:
        """Answer a request received from the masker (we are the UAS)."""
        reasons = {
            100: "Trying",
            180: "Ringing",
            183: "Session Progress",
            200: "OK",
            401: "Unauthorized",
            404: "Not Found",
            486: "Busy Here",
            487: "Request Terminated",
            488: "Not Acceptable Here",
            603: "Decline",
        }
        to = req.header("To")
        if to_tag and ";tag=" not in to:
            to += f";tag={to_tag}"
        lines = [f"SIP/2.0 {code} {reason or reasons.get(code, 'Status')}"]
        lines += [f"Via: {v}" for v in req.all("Via")]
        lines += [
            f"From: {req.header('From')}",
            f"To: {to}",
            f"Call-ID: {req.header('Call-ID')}",
            f"CSeq: {req.header('CSeq')}",
            f"Contact: <sip:pbx@{HOST}:{self.port}>",
        ]
        if extra:
            lines += [ln for ln in extra.split("\r\n") if ln]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        self.send_raw("\r\n".join(lines) + "\r\n\r\n" + body, req.source)


def ack_for(
    ep: SipEndpoint, resp: SipMessage, uri: str, call_id: str, from_tag: str, body: str = ""
) -> str:
    """The ACK of a final response to our INVITE (same CSeq number)."""
    cseq = int(resp.header("CSeq").split()[0])
    return ep.request(
        "ACK", uri, call_id=call_id, from_tag=from_tag, to_tag=resp.tag("To"), cseq=cseq, body=body
    )
