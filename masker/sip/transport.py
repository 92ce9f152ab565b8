"""sippy's transaction manager with a guard in front: datagrams from untrusted
sources (`masker.sip.acl`) and bad datagrams are dropped and counted, requests
with duplicated single-valued or missing mandatory headers or a Content-Type
sippy cannot parse get 400, oversize requests 513, a request's body need not be
UTF-8 (an INFO's reaches sippy byte for byte, see `sippy_text`), and nothing
that arrives can raise out of the event loop."""

from __future__ import annotations

import re
import secrets
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from sippy.SipTransactionManager import SipTransactionManager
from sippy.Udp_server import Udp_server, Udp_server_opts

from masker.sip.acl import SourceAcl
from masker.sip.methods import ALLOW, MANDATORY_HEADERS, SINGLE_HEADERS

if TYPE_CHECKING:  # sippy has no type information: these names are Any to mypy
    from sippy.Network_server import Remote_address
    from sippy.Time.MonoTime import MonoTime

log = structlog.get_logger()

#: sippy reads datagrams with recvfrom(8192): anything that long may be truncated.
SIPPY_RECV_LIMIT = 8192


#: A URI's transport parameter, whose value is case-insensitive (RFC 3261 19.1.4);
#: sippy only knows the lower-case names and refuses to send to `transport=UDP`.
_TRANSPORT_PARAM = re.compile(rb";transport=(udp|tcp|tls|sctp|wss?)\b", re.IGNORECASE)


class OrderedUdpServerOpts(Udp_server_opts):
    """One sender and one receiver thread on the SIP socket (sippy's default is three
    of each): datagrams then leave in the order they were sent, so a relayed 180 can
    no longer overtake the 200 that followed it, and arrive in the order they came.

    No SO_REUSEADDR/SO_REUSEPORT (sippy sets both by default): with them a second
    process could bind the same SIP port and silently take part of its traffic; without
    them the second one fails to start ("address in use").  UDP has no TIME_WAIT, so
    a restart does not need them."""

    nworkers = 1
    flags = 0


class GuardedTransactionManager(SipTransactionManager):
    """SipTransactionManager that validates before sippy parses."""

    model_udp_server = (Udp_server, OrderedUdpServerOpts)
    counters: Counter[str]
    max_message: int = SIPPY_RECV_LIMIT

    def __init__(
        self,
        global_config: dict[str, Any],
        req_cb: Any = None,
        max_message: int = 8192,
        acl: SourceAcl | None = None,
    ) -> None:
        self.counters = Counter()
        self.max_message = min(max_message, SIPPY_RECV_LIMIT)
        self.acl = acl
        super().__init__(global_config, req_cb)

    def handleIncoming(
        self, data_in: bytes | str, ra: Remote_address, server: Udp_server, rtime: MonoTime
    ) -> None:
        try:
            self._guarded(data_in, ra, server, rtime)
        except Exception as exc:
            self.counters["sip_errors"] += 1
            log.error("sip datagram failed", exc_type=type(exc).__name__, source=str(ra))

    def _guarded(
        self, data_in: bytes | str, ra: Remote_address, server: Udp_server, rtime: MonoTime
    ) -> None:
        c = self.counters
        c["sip_datagrams"] += 1
        if self.acl is not None and not self.acl.allows(ra.address[0]):
            c["sip_drop_untrusted"] += 1
            return
        raw = data_in if isinstance(data_in, bytes) else data_in.encode("utf-8", "replace")
        verdict = screen(raw, self.max_message)
        if verdict.counter is not None:
            c[verdict.counter] += 1
            if verdict.reply is not None:
                self._reject(verdict.text, ra, server, *verdict.reply)
            return
        super().handleIncoming(verdict.data, ra, server, rtime)

    def _reject(
        self, text: str, ra: Remote_address, server: Udp_server, code: int, reason: str
    ) -> None:
        """Answer a request sippy cannot or must not handle, built from its raw headers
        (sippy's parser may refuse exactly the request we are rejecting)."""
        if text.startswith("SIP/2.0 ") or text.startswith("ACK "):
            return  # never answer responses or ACKs
        resp = raw_response(text, code, reason)
        if resp is None:
            self.counters["sip_drop_unparsable"] += 1
            return
        self.transmitData(server, resp, ra.address)


def _split(raw: bytes) -> tuple[bytes, bytes, bytes]:
    for sep in (b"\r\n\r\n", b"\n\n"):
        head, found, body = raw.partition(sep)
        if found:
            return head, found, body
    return raw, b"", b""


def sippy_text(raw: bytes) -> str | None:
    """The datagram as the text sippy parses, or None when its header is not UTF-8.

    The header must be UTF-8.  A request's body may be anything (a binary
    audio/telephone-event INFO payload, Latin-1 text): when it is not ASCII, or is
    an INFO's, it is decoded as Latin-1, one character per byte, so sippy's
    Content-Length check holds and `masker.sip.info.body_bytes` gets the exact bytes
    back.  A response's body must be UTF-8 as before."""
    head, sep, body = _split(raw)
    try:
        head_text = head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if body.isascii():
        return head_text + sep.decode() + body.decode("ascii")
    is_request = not head_text.startswith("SIP/2.0 ")
    method = head_text.split(" ", 1)[0]
    if is_request and method == "INFO":
        return head_text + sep.decode() + body.decode("latin-1")
    try:
        return head_text + sep.decode() + body.decode("utf-8")
    except UnicodeDecodeError:
        if not is_request:
            return None
        return head_text + sep.decode() + body.decode("latin-1")


@dataclass(frozen=True)
class Screened:
    """The guard's decision on one datagram: pass `data` to sippy (no `counter`), or
    count it under `counter` and drop it, answering `reply` (status, reason) if set."""

    counter: str | None
    reply: tuple[int, str] | None = None
    text: str = ""
    data: bytes | str = b""


def screen(raw: bytes, max_message: int) -> Screened:
    """What the guard does with a datagram from a trusted source (pure: no I/O)."""
    if len(raw) < 32 or raw.strip(b"\r\n\0 ") == b"":
        return Screened("sip_drop_short")  # keep-alives (CRLF) and fragments
    text = sippy_text(raw)
    if text is None or not (text.startswith("SIP/2.0 ") or " SIP/2.0" in text.split("\n", 1)[0]):
        return Screened("sip_drop_garbage")
    if "\r\n\r\n" not in text and "\n\n" not in text:
        return Screened("sip_drop_truncated")
    response = text.startswith("SIP/2.0 ")
    if response and bad_status_line(text):
        return Screened("sip_drop_bad_status")  # sippy would print the whole datagram
    if len(raw) >= max_message:
        return Screened("sip_oversize", (513, "Message Too Large"), text)
    problem = None if response else _header_problem(text)
    if problem is not None:
        return Screened("sip_bad_headers", (400, problem), text)
    data = lower_transport_params(raw)
    if not data.isascii() and not response:
        # a request whose body sippy must see byte for byte; sippy takes bytes or str
        body = sippy_text(data)
        return (
            Screened("sip_drop_garbage") if body is None else Screened(None, text=text, data=body)
        )
    return Screened(None, text=text, data=data)


def lower_transport_params(raw: bytes) -> bytes:
    """The message with every `;transport=` value in its header in lower case."""
    head, sep, body = raw.partition(b"\r\n\r\n")
    if b";transport=" not in head.lower():
        return raw
    return _TRANSPORT_PARAM.sub(lambda m: m.group(0).lower(), head) + sep + body


def bad_status_line(text: str) -> bool:
    """True when a response's status code is not three digits from 100 to 699
    (RFC 3261 7.2, 21): nothing can match it to a transaction."""
    parts = text.split("\n", 1)[0].rstrip("\r").split(" ", 2)
    code = parts[1] if len(parts) > 1 else ""
    return not (len(code) == 3 and code.isascii() and code.isdigit() and "1" <= code[0] <= "6")


_ECHOED = ("via", "v", "from", "f", "to", "t", "call-id", "i", "cseq")


def raw_response(text: str, code: int, reason: str) -> str | None:
    """A response echoing the request's Via/From/To/Call-ID/CSeq lines (RFC 3261 8.2.6)."""
    head = text.replace("\r\n", "\n").split("\n\n", 1)[0].split("\n")
    echoed = []
    for line in head[1:]:
        name = line.split(":", 1)[0].strip().lower()
        if name in _ECHOED:
            if name in ("to", "t") and ";tag=" not in line.lower():
                line += f";tag={secrets.token_hex(6)}"
            echoed.append(line.strip())
    if not any(ln.lower().startswith(("via:", "v:")) for ln in echoed):
        return None
    lines = [f"SIP/2.0 {code} {reason}", *echoed]
    if code in (405, 501):
        lines.append(f"Allow: {ALLOW}")
    lines.append("Content-Length: 0")
    return "\r\n".join(lines) + "\r\n\r\n"


def _header_problem(text: str) -> str | None:
    """A reason phrase when mandatory headers are missing or single ones repeated."""
    head = text.replace("\r\n", "\n").split("\n\n", 1)[0]
    counts: Counter[str] = Counter()
    ctypes: list[str] = []
    compact = {
        "i": "call-id",
        "f": "from",
        "t": "to",
        "v": "via",
        "l": "content-length",
        "c": "content-type",
    }
    for line in head.split("\n")[1:]:
        if not line or line[0] in " \t":
            continue
        name, _, value = line.partition(":")
        name = compact.get(name.strip().lower(), name.strip().lower())
        counts[name] += 1
        if name in ("content-type", "c"):
            ctypes.append(value.strip())
    for name in MANDATORY_HEADERS:
        if counts[name] == 0:
            return f"Missing {name.title()} Header"
    if ctypes and any("=" not in param for param in ctypes[0].split(";")[1:]):
        # RFC 3261 m-parameter needs "="; sippy's parser raises on it and answers nothing
        return "Malformed Content-Type Header"
    for name in SINGLE_HEADERS:
        if counts[name] > 1:
            return f"Duplicate {name.title()} Header"
    return None
