"""A lightweight SIP/RTP load phone for the call bench: real UDP, real SIP INVITEs.

pjsua2 allows four calls per process, so hundreds of concurrent calls would
need a hundred processes.  This module plays both ends of many calls in one
process with plain sockets: a UAC side that sends INVITE/ACK/BYE and G.711
RTP, and a UAS side (the "agent") that answers 200 with SDP, receives the
masked RTP and timestamps it in the kernel (SO_TIMESTAMPNS), so a busy Python
loop does not distort the measured arrival times.

It speaks just enough SIP for the bench (no authentication, no re-INVITE).
"""

from __future__ import annotations

import re
import secrets
import socket
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from dsp import g711
from masker.calls.ids import log_safe_hex

FRAME = 160  # 20 ms at 8 kHz
PT_PCMU = 0
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)
#: The timing burst: one 20 ms packet of loud noise every BURST_EVERY packets.
BURST_EVERY = 50
#: A caller packet sent this late (ms) marks a stall of the generator itself.
STALL_MS = 20.0
#: A change this large (s) of the wall clock against the monotonic one between two
#: reads is a step of the wall clock (NTP, a virtual machine's clock sync), not drift.
CLOCK_STEP_S = 0.001
BURST_THRESHOLD = 3000


#: mu-law code -> 1 if its sample is louder than the burst threshold (C-speed test)
LOUD_ULAW = bytes(
    int(abs(int(v)) > BURST_THRESHOLD) for v in g711.decode(np.arange(256, dtype=np.uint8), "ulaw")
)


def quiet_payload(rng: np.random.Generator) -> bytes:
    """20 ms of low-level noise (about -50 dBm0): not silence, never a keypad tone."""
    return g711.encode((rng.normal(0, 60, FRAME)).astype(np.int16), "ulaw").tobytes()


def burst_payload(rng: np.random.Generator) -> bytes:
    """20 ms of loud white noise starting at the packet's first sample."""
    noise = np.clip(rng.normal(0, 6000, FRAME), -20000, 20000)
    noise[0] = 12000.0
    return g711.encode(noise.astype(np.int16), "ulaw").tobytes()


def rtp_header(seq: int, ts: int, ssrc: int, pt: int = PT_PCMU) -> bytes:
    return struct.pack("!BBHII", 0x80, pt & 0x7F, seq & 0xFFFF, ts & 0xFFFFFFFF, ssrc)


def sdp(port: int, session: int) -> str:
    return (
        "v=0\r\n"
        f"o=lite {session} 1 IN IP4 127.0.0.1\r\n"
        "s=-\r\n"
        "c=IN IP4 127.0.0.1\r\n"
        "t=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 101\r\n"
        "a=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\n"
        "a=fmtp:101 0-15\r\n"
        "a=ptime:20\r\n"
        "a=sendrecv\r\n"
    )


def parse_sdp_media(body: str) -> tuple[str, int] | None:
    """(address, port) of the first audio stream of an SDP body."""
    c = re.search(r"^c=IN IP4 (\S+)", body, re.MULTILINE)
    m = re.search(r"^m=audio (\d+)", body, re.MULTILINE)
    if not (c and m):
        return None
    return c.group(1), int(m.group(1))


@dataclass
class SipMessage:
    first: str
    headers: list[tuple[str, str]]
    body: str

    def get(self, name: str) -> str:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return ""

    def all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def is_request(self) -> bool:
        return not self.first.startswith("SIP/2.0")

    @property
    def method(self) -> str:
        return self.first.split(" ", 1)[0] if self.is_request else self.get("cseq").split()[-1]

    @property
    def status(self) -> int:
        return 0 if self.is_request else int(self.first.split(" ")[1])


COMPACT = {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact",
           "l": "content-length", "c": "content-type"}  # fmt: skip


def parse_sip(data: bytes) -> SipMessage | None:
    try:
        text = data.decode("utf-8", "replace")
    except UnicodeDecodeError:
        return None
    head, _, body = text.partition("\r\n\r\n")
    lines = head.split("\r\n")
    headers = []
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            name = name.strip()
            headers.append((COMPACT.get(name.lower(), name), value.strip()))
    return SipMessage(lines[0], headers, body)


@dataclass
class RxStats:
    """What the agent side measured on one call's RTP."""

    packets: int = 0
    lost: int = 0
    late: int = 0
    transit_ms: list[float] = field(default_factory=list)
    delays_ms: list[float] = field(default_factory=list)
    last_seq: int | None = None
    last_burst: int = -1
    #: the stream's RTP timestamp unwrapped past 2**32 (a random start may wrap in a
    #: long run: at 8 kHz once in 6.2 days, so in an hour on about one call in 150)
    ext_ts: int | None = None


def unwrap_ts(rx: RxStats, ts: int) -> int:
    """`ts` extended beyond 32 bits from the stream's last one (RFC 3550 A.1 style)."""
    if rx.ext_ts is None:
        rx.ext_ts = ts
    else:
        rx.ext_ts += ((ts - rx.ext_ts + 2**31) & 0xFFFFFFFF) - 2**31
    return rx.ext_ts


@dataclass
class LiteCall:
    n: int
    call_id: str
    from_tag: str
    caller_rtp: socket.socket
    agent_rtp: socket.socket
    state: str = "new"
    to_tag: str = ""
    remote_contact: str = ""
    #: Route headers of the dialog (the answer's Record-Route, reversed: a proxy
    #: such as the cluster's dispatcher keeps in-dialog requests on the call's node)
    route_set: str = ""
    service_caller_rtp: tuple[str, int] | None = None
    service_agent_rtp: tuple[str, int] | None = None
    agent_call_id: str = ""
    agent_dialog: dict[str, str] = field(default_factory=dict)
    seq: int = 0
    ssrc: int = 0
    send_times: list[float] = field(default_factory=list)
    rx: RxStats = field(default_factory=RxStats)
    #: the caller side's relative transit (ms) of the agent's RTP, with `time_back`
    back_transit_ms: list[float] = field(default_factory=list)
    invite_at: float = 0.0
    answered_at: float = 0.0
    cseq: int = 1
    audio: list[bytes] | None = None  # agent-side payloads, when recording
    media_t0: float = 0.0
    #: when (monotonic) the generator last read the caller socket
    back_read_at: float = 0.0
    bye_sent_at: float = 0.0
    bye_tries: int = 0


def received_pcm(call: LiteCall) -> np.ndarray:
    """The agent side's received audio of a recording call, decoded (int16)."""
    if not call.audio:
        return np.zeros(0, dtype=np.int16)
    codes = np.frombuffer(b"".join(call.audio), dtype=np.uint8)
    return g711.decode(codes, "ulaw").astype(np.int16)


class LitePhones:
    """Both ends of many bench calls through one masker, driven by `tick()`."""

    def __init__(self, service: tuple[str, int], seed: int = 1):
        self.service = service
        self.rng = np.random.default_rng(seed)
        self.uac = self._udp()
        self.uas = self._udp()
        self.uac.setblocking(False)
        self.uas.setblocking(False)
        self.calls: dict[str, LiteCall] = {}
        self.by_agent_call: dict[str, LiteCall] = {}
        self.quiet = [quiet_payload(self.rng) for _ in range(8)]
        self.burst = burst_payload(self.rng)
        self.sent_packets = 0
        self.send_late_ms: list[float] = []
        #: when (monotonic) each caller packet sent >= STALL_MS late went out: the
        #: generator's own stalls
        self.stalls: list[float] = []
        self._drains = 0
        self._drain_started = 0.0
        self._wall: float | None = None
        #: when (monotonic) a step of the wall clock was seen (CLOCK_STEP_S); packets
        #: that may have come before one are counted, not timed (`untimed`)
        self.clock_steps: list[float] = []
        self.untimed = 0
        self.caller_rx_packets = 0
        #: timestamp the caller side's receiving too (the agent-to-caller direction's
        #: relative transit in each call's `back_transit_ms`); off: only counted
        self.time_back = False
        #: answer agent-leg INVITEs of calls this object did not place (pjsua2
        #: callers), recording what they receive
        self.accept_any = False

    @staticmethod
    def _udp() -> socket.socket:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        return s

    @property
    def uas_port(self) -> int:
        return self.uas.getsockname()[1]

    # -- SIP UAC (caller side) ----------------------------------------------
    def start_call(self, n: int, user: str = "bench") -> LiteCall:
        call = self.new_call(n)
        call.invite_at = time.monotonic()
        self._send_invite(call, user)
        return call

    def new_call(self, n: int) -> LiteCall:
        """A call's two RTP sockets and state, with no SIP: a caller that sets
        `service_caller_rtp`/`service_agent_rtp` and `state = "up"` itself (an
        RTP proxy driven over its own control protocol) gets the same media."""
        crtp, artp = self._udp(), self._udp()
        for s in (crtp, artp):
            s.setblocking(False)
        artp.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        if self.time_back:
            crtp.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        call = LiteCall(n, log_safe_hex(8) + "@bench", log_safe_hex(4), crtp, artp)
        call.ssrc = int(self.rng.integers(1, 2**31))
        self.calls[call.call_id] = call
        return call

    def _uac_headers(self, call: LiteCall, method: str, branch: str, to_tag: str = "") -> str:
        host, port = self.uac.getsockname()
        to = f"<sip:{self._user}@{self.service[0]}:{self.service[1]}>"
        if to_tag:
            to += f";tag={to_tag}"
        return (
            f"Via: SIP/2.0/UDP {host}:{port};branch=z9hG4bK{branch};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:caller{call.n}@{host}:{port}>;tag={call.from_tag}\r\n"
            f"To: {to}\r\n"
            f"Call-ID: {call.call_id}\r\n"
            f"CSeq: {call.cseq} {method}\r\n"
            f"Contact: <sip:caller{call.n}@{host}:{port}>\r\n"
            "User-Agent: masker-bench-lite\r\n"
        )

    _user = "bench"

    def _send_invite(self, call: LiteCall, user: str) -> None:
        self._user = user
        body = sdp(call.caller_rtp.getsockname()[1], call.n + 1)
        call.branch = secrets.token_hex(6)  # type: ignore[attr-defined]
        msg = (
            f"INVITE sip:{user}@{self.service[0]}:{self.service[1]} SIP/2.0\r\n"
            + self._uac_headers(call, "INVITE", call.branch)  # type: ignore[attr-defined]
            + "Content-Type: application/sdp\r\n"
            f"Content-Length: {len(body)}\r\n\r\n{body}"
        )
        self.uac.sendto(msg.encode(), self.service)
        call.state = "inviting"

    def _send_ack(self, call: LiteCall) -> None:
        msg = (
            f"ACK {call.remote_contact or f'sip:{self._user}@{self.service[0]}'} SIP/2.0\r\n"
            + self._uac_headers(call, "ACK", secrets.token_hex(6), call.to_tag).replace(
                f"CSeq: {call.cseq} ACK", "CSeq: 1 ACK"
            )
            + call.route_set
            + "Content-Length: 0\r\n\r\n"
        )
        self.uac.sendto(msg.encode(), self.service)

    def hangup(self, call: LiteCall) -> None:
        call.cseq += 1
        call.bye_sent_at = time.monotonic()
        call.bye_tries = 1
        self._send_bye(call)
        call.state = "bye_sent"

    def retransmit(self, now: float) -> None:
        """Resend BYEs not yet answered (RFC 3261 timer E, simplified: every 0.5 s)."""
        for call in self.calls.values():
            if call.state == "bye_sent" and now - call.bye_sent_at > 0.5 and call.bye_tries < 8:
                call.bye_sent_at = now
                call.bye_tries += 1
                self._send_bye(call)

    def _send_bye(self, call: LiteCall) -> None:
        msg = (
            f"BYE {call.remote_contact or f'sip:{self._user}@{self.service[0]}'} SIP/2.0\r\n"
            + self._uac_headers(call, "BYE", secrets.token_hex(6), call.to_tag)
            + call.route_set
            + "Content-Length: 0\r\n\r\n"
        )
        self.uac.sendto(msg.encode(), self.service)

    def _on_uac(self, msg: SipMessage) -> None:
        call = self.calls.get(msg.get("call-id"))
        if call is None or msg.is_request:
            if msg.is_request:  # BYE from the far end
                self._reply(self.uac, msg, None, 200)
                if call is not None:
                    call.state = "ended"
            return
        if msg.method == "INVITE" and msg.status >= 200:
            if msg.status == 200:
                to = msg.get("to")
                m = re.search(r"tag=([^;>\s]+)", to)
                call.to_tag = m.group(1) if m else ""
                c = re.search(r"<([^>]+)>", msg.get("contact"))
                call.remote_contact = c.group(1) if c else ""
                routes = [r for h in msg.all("record-route") for r in re.findall(r"<[^>]+>", h)]
                call.route_set = "".join(f"Route: {r}\r\n" for r in reversed(routes))
                call.service_caller_rtp = parse_sdp_media(msg.body)
                self._send_ack(call)
                if call.state == "inviting":
                    call.state = "up"
                    call.answered_at = time.monotonic()
            else:
                call.state = f"failed {msg.status}"
        elif msg.method == "BYE" and msg.status >= 200:
            call.state = "ended"

    # -- SIP UAS (agent side) -----------------------------------------------
    def _reply(
        self, sock: socket.socket, req: SipMessage, addr: tuple[str, int] | None, code: int,
        to_tag: str = "", body: str = "", reason: str = "OK",
    ) -> None:  # fmt: skip
        host, port = sock.getsockname()
        to = req.get("to")
        if to_tag and "tag=" not in to:
            to += f";tag={to_tag}"
        lines = [f"SIP/2.0 {code} {reason}"]
        lines += [f"Via: {v}" for v in req.all("via")]
        lines += [
            f"From: {req.get('from')}",
            f"To: {to}",
            f"Call-ID: {req.get('call-id')}",
            f"CSeq: {req.get('cseq')}",
            f"Contact: <sip:agent@{host}:{port}>",
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(lines) + "\r\n\r\n" + body).encode()
        if addr is None:
            addr = self.service
        sock.sendto(data, addr)

    def _on_uas(self, msg: SipMessage, addr: tuple[str, int]) -> None:
        if not msg.is_request:
            return
        cid = msg.get("call-id")
        method = msg.method
        call = self.by_agent_call.get(cid)
        if method == "INVITE":
            if call is None:
                call = self._match_agent_call(msg)
                if call is None:
                    self._reply(self.uas, msg, addr, 503, reason="Service Unavailable")
                    return
                call.agent_call_id = cid
                call.agent_dialog["to_tag"] = secrets.token_hex(4)
                self.by_agent_call[cid] = call
            call.service_agent_rtp = parse_sdp_media(msg.body) or call.service_agent_rtp
            body = sdp(call.agent_rtp.getsockname()[1], 10000 + call.n)
            self._reply(self.uas, msg, addr, 200, call.agent_dialog["to_tag"], body)
        elif method == "ACK":
            return
        elif method == "BYE":
            self._reply(self.uas, msg, addr, 200)
            if call is not None:
                call.state = "ended"
        elif method == "CANCEL":
            self._reply(self.uas, msg, addr, 200)
        else:
            self._reply(self.uas, msg, addr, 200)

    def _match_agent_call(self, msg: SipMessage) -> LiteCall | None:
        """The bench call this agent-leg INVITE belongs to: From carries caller<n>."""
        m = re.search(r"caller(\d+)@", msg.get("from"))
        if m:
            n = int(m.group(1))
            for call in self.calls.values():
                if call.n == n and not call.agent_call_id:
                    return call
        if not self.accept_any:
            return None
        artp = self._udp()
        artp.setblocking(False)
        artp.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        crtp = self._udp()
        crtp.setblocking(False)
        call = LiteCall(-1, msg.get("call-id"), "", crtp, artp, state="inbound", audio=[])
        self.calls[call.call_id] = call
        return call

    # -- the loop ----------------------------------------------------------
    def poll_sip(self) -> None:
        for sock in (self.uac, self.uas):
            while True:
                try:
                    data, addr = sock.recvfrom(65535)
                except BlockingIOError:
                    break
                msg = parse_sip(data)
                if msg is None:
                    continue
                if sock is self.uac:
                    self._on_uac(msg)
                else:
                    self._on_uas(msg, addr)

    def send_media(self, now: float, tick: float | None = None) -> None:
        """Every 20 ms packet now due, per direction, for every answered call.

        Packets follow the wall clock from the call's answer: a late loop sends
        the missed packets at once (as a real phone's RTP clock would), and the
        lateness of each caller packet is kept in `send_late_ms` (and in `stalls`
        when it is `STALL_MS` or more).  `tick` is the
        scheduled time of this loop iteration (the grid new calls' clocks start on).
        """
        for call in self.calls.values():
            if call.state != "up":
                continue
            if call.media_t0 == 0.0:  # on the caller's tick grid, so on-time ticks are on time
                call.media_t0 = now if tick is None else tick
            due = min(int((now - call.media_t0 + 0.002) / 0.020) + 1, call.seq + 5)
            while call.seq < due:
                i = call.seq
                payload = self.burst if i % BURST_EVERY == 5 else self.quiet[i % len(self.quiet)]
                if call.service_caller_rtp:
                    call.send_times.append(time.monotonic())  # before: loopback is that fast
                    call.caller_rtp.sendto(rtp_header(i, i * FRAME, call.ssrc) + payload,
                                           call.service_caller_rtp)  # fmt: skip
                    self.sent_packets += 1
                    late_ms = (now - call.media_t0 - i * 0.020) * 1000
                    self.send_late_ms.append(late_ms)
                    if late_ms >= STALL_MS:
                        self.stalls.append(now)
                if call.service_agent_rtp:
                    back = rtp_header(i, i * FRAME, call.ssrc ^ 0x5A5A5A5A) + self.quiet[0]
                    call.agent_rtp.sendto(back, call.service_agent_rtp)
                    self.sent_packets += 1
                call.seq += 1

    def drain_media(self) -> None:
        """Read every arrived RTP packet; measure at the agent side.

        The caller side is only counted, every 10th call (the kernel queues
        the rest), to spend the generator's CPU where measurements are made.
        Arrivals are the kernel's receive stamps, on the wall clock: a packet that
        may have come before a step of the wall clock (`clock_steps`) would take
        the step for delay, so it is counted but not timed.
        """
        self._drains += 1
        started = time.monotonic()
        back: list[tuple[LiteCall, float, bytes, list[tuple[int, int, bytes]]]] = []
        agent: list[tuple[LiteCall, bytes, list[tuple[int, int, bytes]]]] = []
        for call in self.calls.values():
            if call.n % 10 == self._drains % 10:
                since, call.back_read_at = call.back_read_at, started
                while True:
                    try:
                        data, anc, _, _ = call.caller_rtp.recvmsg(2048, 64)
                    except BlockingIOError:
                        break
                    back.append((call, since, data, anc))
            while True:
                try:
                    data, anc, _, _ = call.agent_rtp.recvmsg(2048, 64)
                except BlockingIOError:
                    break
                agent.append((call, data, anc))
        # kernel stamps are wall clock (see _kernel_time); one read a drain finds any
        # step since the last drain's, so before this drain's packets were all read
        wall = self._read_wall()
        last_step = self.clock_steps[-1] if self.clock_steps else -1.0
        for call, since, data, anc in back:
            transit = back_transit_ms(data, anc, wall)
            if transit is None:
                continue
            self.caller_rx_packets += 1
            if self.time_back and last_step <= since:  # kernel time: reading late is fine
                call.back_transit_ms.append(transit)
        timed = last_step <= self._drain_started
        self.untimed += 0 if timed else len(agent)
        for call, data, anc in agent:
            self._on_agent_rtp(call, data, _kernel_time(anc, wall) if timed else None)
            if call.audio is not None and len(data) > 12 and _is_pcmu_rtp(data):
                call.audio.append(data[12:])
        self._drain_started = started

    def _read_wall(self) -> float:
        """Wall minus monotonic clock now; a change since the last read beyond
        CLOCK_STEP_S is a step of the wall clock, kept in `clock_steps`.  Read
        between two monotonic readings close together: a thread preempted between
        its two clock reads would see a step that is not there."""
        for _ in range(3):
            before = time.monotonic()
            wall = time.time()
            now = time.monotonic()
            if now - before < CLOCK_STEP_S / 4:
                break
        wall -= (before + now) / 2
        if self._wall is not None and abs(wall - self._wall) > CLOCK_STEP_S:
            self.clock_steps.append(now)
        self._wall = wall
        return wall

    def _on_agent_rtp(self, call: LiteCall, data: bytes, arrival: float | None) -> None:
        """Loss, relative transit (RFC 3550 sense) and timing-burst delay of one packet
        (the last two only where its `arrival` is known)."""
        if not _is_pcmu_rtp(data):
            return
        rx = call.rx
        seq, ts = struct.unpack("!HI", data[2:8])
        if rx.last_seq is not None:
            gap = (seq - rx.last_seq) & 0xFFFF
            if 1 < gap < 1000:
                rx.lost += gap - 1
        rx.last_seq = seq
        rx.packets += 1
        ext_ts = unwrap_ts(rx, ts)  # kept up through untimed packets too
        if arrival is None:
            return
        rx.transit_ms.append(arrival * 1000.0 - ext_ts / 8.0)
        first_loud = data[12:].translate(LOUD_ULAW).find(1)
        if first_loud < 0 or not call.send_times:
            return
        # the latest burst sent before this packet arrived; only its first packet counts
        j = 5 + BURST_EVERY * ((len(call.send_times) - 1 - 5) // BURST_EVERY)
        while j >= 5 and call.send_times[j] > arrival:
            j -= BURST_EVERY
        if j < 5 or j <= rx.last_burst:
            return
        rx.last_burst = j
        delay = (arrival - call.send_times[j]) * 1000 + first_loud * 1000 / 8000
        if delay < 500:
            rx.delays_ms.append(delay)


def back_transit_ms(
    data: bytes, ancdata: list[tuple[int, int, bytes]], wall: float
) -> float | None:
    """Relative transit (ms) of the agent's RTP at the caller, or None for anything
    else: RTCP our phones' neighbour ports are sent (a caller socket bound on port
    P + 1 of another call's gets that call's reports, RTCP going to RTP + 1) would
    read as RTP with its SSRC for a timestamp, days away from the stream's."""
    if not _is_pcmu_rtp(data):
        return None
    ts = struct.unpack("!I", data[4:8])[0]
    return _kernel_time(ancdata, wall) * 1000.0 - ts / 8.0


def _is_pcmu_rtp(data: bytes) -> bool:
    """An RTP packet of the phones' one codec (not RTCP, whose type byte is 200-204)."""
    return len(data) >= 12 and data[1] & 0x7F == PT_PCMU


def _kernel_time(ancdata: list[tuple[int, int, bytes]], wall: float) -> float:
    """When the kernel received a datagram, on the monotonic clock.  SO_TIMESTAMPNS
    stamps are wall-clock time: less `wall` (wall minus monotonic, read just before),
    so that a step of the wall clock (NTP, VM clock sync) is not taken for delay."""
    for level, kind, data in ancdata:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
            sec, nsec = struct.unpack("qq", data[:16])
            return sec + nsec / 1e9 - wall
    return time.monotonic()


def drive(
    phones: LitePhones,
    until: float,
    tick: float = 0.020,
    each_tick: Callable[[float], None] | None = None,
) -> None:
    """Run the phones on this thread until `until` (monotonic): SIP, one 20 ms frame per
    call per tick on the tick's clock, and everything received; a late tick is not
    caught up but restarts the clock.  `each_tick(now)` runs first in every tick (a
    load that starts calls as it goes)."""
    next_tick = time.monotonic()
    while time.monotonic() < until:
        now = time.monotonic()
        if each_tick is not None:
            each_tick(now)
        phones.poll_sip()
        phones.send_media(now, next_tick)
        phones.drain_media()
        next_tick += tick
        delay = next_tick - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            next_tick = time.monotonic()


def drive_until_up(phones: LitePhones, calls: list[LiteCall], timeout: float) -> bool:
    """`drive` the phones until every call is answered or `timeout` s have passed;
    True when all are up."""
    deadline = time.monotonic() + timeout
    while any(c.state != "up" for c in calls) and time.monotonic() < deadline:
        drive(phones, time.monotonic() + 0.1)
    return all(c.state == "up" for c in calls)


def close_all(phones: LitePhones) -> None:
    """Close every socket the load phones opened."""
    for call in phones.calls.values():
        call.caller_rtp.close()
        call.agent_rtp.close()
    phones.uac.close()
    phones.uas.close()


class Pump:
    """Runs a LitePhones' SIP and receive side in a background thread (no sending):
    enough for the agent side of calls placed by other phones."""

    def __init__(self, phones: LitePhones, every_s: float = 0.01):
        import threading

        self.phones = phones
        self.every_s = every_s
        self.lock = threading.Lock()
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every_s):
            with self.lock:
                try:
                    self.phones.poll_sip()
                    self.phones.drain_media()
                except (OSError, ValueError, IndexError):
                    self.errors += 1  # a malformed datagram must not stop the agent side

    def __enter__(self) -> Pump:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
