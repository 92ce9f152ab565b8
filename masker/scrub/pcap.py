"""Packet captures (pcap, pcapng): RTP audio masked in-band, RFC 4733 events
removed, SIP INFO digit bodies blanked.  Read and written with dpkt.

Records are framed with dpkt's own header/block classes (`dpkt.pcap.PktHdr`,
`dpkt.pcapng` blocks) rather than its iterating readers, so a truncated capture
is reported as truncated (dpkt's readers silently return a short last packet)
and every record header (timestamps, original length) is written back as it
was.  Frames are decoded by dpkt (Ethernet, Linux SLL/SLL2, loopback, raw IP;
IPv4/IPv6; UDP/TCP).  A changed payload keeps its length, so only the bytes of
the payload and the UDP/TCP checksum change (a zero IPv4 UDP checksum, "none",
stays zero).

Streams: which RTP streams are audio comes from the SDP in the capture's SIP
(c= address and m= port -> rtpmap), else from the static payload types 0
(PCMU) and 8 (PCMA).  G.722 (9) and any other codec are reported as
"unsupported codec" and make the file not clean.  telephone-event packets
(SDP, or, without SDP, a dynamic payload type whose every payload is a whole
number of 4-byte event blocks with keypad-range events) are removed from the
capture.  An audio stream is one (5-tuple, SSRC, codec); its packets are put in
order by extended sequence number and laid on a timeline by RTP timestamp
(gaps are kept up to `MAX_GAP_S`, never overlapping), masked with the same
engine as audio files, and each packet gets its own slice back.

SIP INFO bodies of type application/dtmf-relay, application/dtmf,
application/vnd.nortelnetworks.digits and application/telephone-event are
blanked in place: every keypad character (0-9 A-D * #) of the digit field
becomes ``X`` (binary telephone-event bodies: the event byte becomes 0xFF), so
Content-Length and the IP/UDP lengths stay valid.
"""

from __future__ import annotations

import re
import socket
import struct
from dataclasses import dataclass, field
from typing import Any

import dpkt
import numpy as np

from dsp import g711
from masker.media.law import G711_LAW, RATE
from masker.scrub.audio import ScrubError
from masker.scrub.channel_masking import merge_spans

PCAP_EXTS = (".pcap", ".pcapng", ".cap")
MAX_GAP_S = 2.0

_PCAPNG_SHB = 0x0A0D0D0A
_PCAPNG_IDB = 1
_PCAPNG_PB = 2
_PCAPNG_EPB = 6

_STATIC = {
    0: ("PCMU", 8000),
    8: ("PCMA", 8000),
    9: ("G722", 8000),
    3: ("GSM", 8000),
    4: ("G723", 8000),
    18: ("G729", 8000),
}
_DIGIT_TYPES = (
    "application/dtmf-relay",
    "application/dtmf",
    "application/vnd.nortelnetworks.digits",
    "application/telephone-event",
)
_KEYPAD = re.compile(rb"[0-9A-Da-d*#]")
_SIP_START = re.compile(rb"^(?:[A-Z]+ [^ \r\n]+ SIP/2\.0\r?\n|SIP/2\.0 \d{3} )")


@dataclass
class Record:
    """One packet record: raw header/block bytes and where its frame lies in them."""

    raw: bytes
    frame_at: int
    caplen: int
    linktype: int | None
    keep: bool = True

    @property
    def frame(self) -> bytes:
        return self.raw[self.frame_at : self.frame_at + self.caplen]

    def set_frame(self, frame: bytes) -> None:
        assert len(frame) == self.caplen
        self.raw = self.raw[: self.frame_at] + frame + self.raw[self.frame_at + self.caplen :]


@dataclass
class Capture:
    kind: str  # "pcap" | "pcapng"
    head: bytes  # pcap file header (pcapng: b"", its blocks are records with frame_at=-1)
    records: list[Record]


def read_capture(path: str) -> Capture:
    with open(path, "rb") as fh:
        data = fh.read()
    if len(data) < 4:
        raise ScrubError("not a capture (file too short)")
    magic_le = struct.unpack("<I", data[:4])[0]
    if magic_le == _PCAPNG_SHB:
        return _read_pcapng(data)
    return _read_pcap(data)


def _read_pcap(data: bytes) -> Capture:
    from dpkt import pcap

    if len(data) < pcap.FileHdr.__hdr_len__:
        raise ScrubError("truncated capture (file header cut short)")
    fh = pcap.FileHdr(data[: pcap.FileHdr.__hdr_len__])
    if fh.magic in (pcap.PMUDPCT_MAGIC, pcap.PMUDPCT_MAGIC_NANO):
        fh = pcap.LEFileHdr(data[: pcap.FileHdr.__hdr_len__])
        ph_cls = pcap.LEPktHdr
    elif fh.magic in (pcap.TCPDUMP_MAGIC, pcap.TCPDUMP_MAGIC_NANO):
        ph_cls = pcap.PktHdr
    else:
        raise ScrubError("not a capture (no pcap or pcapng magic)")
    pos = pcap.FileHdr.__hdr_len__
    hl = ph_cls.__hdr_len__
    records = []
    while pos < len(data):
        if pos + hl > len(data):
            raise ScrubError(f"truncated capture (record {len(records) + 1} header cut short)")
        ph = ph_cls(data[pos : pos + hl])
        if pos + hl + ph.caplen > len(data):
            raise ScrubError(f"truncated capture (record {len(records) + 1} cut short)")
        if ph.caplen > 262144:
            raise ScrubError(f"corrupt capture (record {len(records) + 1} length)")
        records.append(Record(data[pos : pos + hl + ph.caplen], hl, ph.caplen, fh.linktype))
        pos += hl + ph.caplen
    return Capture("pcap", data[: pcap.FileHdr.__hdr_len__], records)


def _read_pcapng(data: bytes) -> Capture:
    from dpkt import pcapng

    pos = 0
    le = True
    links: list[int] = []
    records = []
    while pos < len(data):
        if pos + 12 > len(data):
            raise ScrubError(f"truncated capture (block {len(records) + 1} cut short)")
        btype = struct.unpack("<I", data[pos : pos + 4])[0]
        if btype == _PCAPNG_SHB:
            bom = data[pos + 8 : pos + 12]
            le = bom == b"\x4d\x3c\x2b\x1a"
            links = []
        blen = struct.unpack("<I" if le else ">I", data[pos + 4 : pos + 8])[0]
        if blen < 12 or blen % 4:
            raise ScrubError(f"corrupt capture (block {len(records) + 1} length)")
        if pos + blen > len(data):
            raise ScrubError(f"truncated capture (block {len(records) + 1} cut short)")
        raw = data[pos : pos + blen]
        try:
            if btype == _PCAPNG_IDB:
                cls = pcapng.InterfaceDescriptionBlockLE if le else pcapng.InterfaceDescriptionBlock
                idb = cls(raw)
                links.append(idb.linktype)
                records.append(Record(raw, -1, 0, None))
            elif btype in (_PCAPNG_EPB, _PCAPNG_PB):
                if btype == _PCAPNG_EPB:
                    blk = (pcapng.EnhancedPacketBlockLE if le else pcapng.EnhancedPacketBlock)(raw)
                    iface = blk.iface_id
                else:
                    blk = (pcapng.PacketBlockLE if le else pcapng.PacketBlock)(raw)
                    iface = blk.iface_id
                if iface >= len(links):
                    raise ScrubError("corrupt capture (packet for an undeclared interface)")
                records.append(Record(raw, 28, blk.caplen, links[iface]))
            else:
                records.append(Record(raw, -1, 0, None))
        except (dpkt.UnpackError, struct.error) as exc:
            raise ScrubError(
                f"corrupt capture ({type(exc).__name__} in block {len(records) + 1})"
            ) from None
        pos += blen
    return Capture("pcapng", b"", records)


def write_capture(cap: Capture, fh) -> None:
    fh.write(cap.head)
    for r in cap.records:
        if r.keep:
            fh.write(r.raw)


# -- frames ------------------------------------------------------------------


@dataclass
class L4:
    """Where a UDP/TCP payload lies in a frame, and what is needed for its checksum."""

    proto: int  # 17 | 6
    v6: bool
    src: bytes
    dst: bytes
    sport: int
    dport: int
    l4_at: int
    l4_end: int
    payload_at: int
    had_sum: bool

    def payload(self, frame: bytes) -> bytes:
        return frame[self.payload_at : min(self.l4_end, len(frame))]


def _l3(linktype: int, frame: bytes):
    if linktype == 1:
        pkt = dpkt.ethernet.Ethernet(frame).data
    elif linktype == 113:
        pkt = dpkt.sll.SLL(frame).data
    elif linktype == 276:
        pkt = dpkt.sll2.SLL2(frame).data
    elif linktype in (0, 108):
        pkt = dpkt.loopback.Loopback(frame).data
    elif linktype in (12, 14, 101, 228, 229):
        pkt = dpkt.ip6.IP6(frame) if frame[:1] and frame[0] >> 4 == 6 else dpkt.ip.IP(frame)
    else:
        return None
    return pkt if isinstance(pkt, dpkt.ip.IP | dpkt.ip6.IP6) else None


def locate(linktype: int | None, frame: bytes) -> L4 | None:
    """The UDP/TCP payload of a frame, or None (not IP, fragment, not decodable)."""
    if linktype is None or len(frame) < 20:
        return None
    try:
        ip = _l3(linktype, frame)
    except (dpkt.UnpackError, struct.error, ValueError, IndexError):
        return None
    if ip is None:
        return None
    v6 = isinstance(ip, dpkt.ip6.IP6)
    if not v6 and (ip.mf or ip.offset):
        return None
    l4 = ip.data
    if not isinstance(l4, dpkt.udp.UDP | dpkt.tcp.TCP):
        return None
    hdr = ip.pack_hdr()[:40] if v6 else ip.pack_hdr()[:20]
    at = frame.find(hdr, 0, 128)
    if at < 0:
        return None
    if v6:
        l3_end = at + 40 + ip.plen
        seg = l4.ulen if isinstance(l4, dpkt.udp.UDP) else (l4.off * 4 + len(l4.data))
        l4_at = l3_end - seg
    else:
        l3_end = at + ip.len
        l4_at = at + ip.hl * 4
    if isinstance(l4, dpkt.udp.UDP):
        proto, l4_end, pay = 17, l4_at + l4.ulen, l4_at + 8
    else:
        proto, l4_end, pay = 6, l3_end, l4_at + l4.off * 4
    if not l4_at < pay <= l4_end:
        return None
    return L4(proto, v6, ip.src, ip.dst, l4.sport, l4.dport, l4_at, l4_end, pay, l4.sum != 0)


def with_payload(frame: bytes, loc: L4, payload: bytes) -> bytes:
    """`frame` with the payload replaced (same length) and the checksum recomputed."""
    end = loc.payload_at + len(payload)
    out = bytearray(frame[: loc.payload_at] + payload + frame[end:])
    if loc.l4_end > len(out) or (loc.proto == 17 and not loc.v6 and not loc.had_sum):
        return bytes(out)  # snapped frame (checksum unknowable) or "no checksum"
    sum_at = loc.l4_at + (6 if loc.proto == 17 else 16)
    out[sum_at : sum_at + 2] = b"\0\0"
    seg = bytes(out[loc.l4_at : loc.l4_end])
    if loc.v6:
        pseudo = struct.pack(">16s16sI3xB", loc.src, loc.dst, len(seg), loc.proto)
    else:
        pseudo = struct.pack(">4s4sxBH", loc.src, loc.dst, loc.proto, len(seg))
    s = dpkt.in_cksum_add(0, pseudo)
    s = dpkt.in_cksum_add(s, seg)
    c = dpkt.in_cksum_done(s)
    if loc.proto == 17 and c == 0:
        c = 0xFFFF
    out[sum_at : sum_at + 2] = struct.pack(">H", c)
    return bytes(out)


def checksum_ok(frame: bytes, loc: L4) -> bool:
    if loc.l4_end > len(frame) or (loc.proto == 17 and not loc.v6 and not loc.had_sum):
        return True
    return with_payload(frame, loc, loc.payload(frame)) == frame


# -- SIP ----------------------------------------------------------------------


def _ip(addr: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET6 if len(addr) == 16 else socket.AF_INET, addr)


def sip_messages(payload: bytes):
    """(start, header_end, body_end, first line, headers) of each SIP message in a payload."""
    pos = 0
    while pos < len(payload) and _SIP_START.match(payload[pos:]):
        sep = payload.find(b"\r\n\r\n", pos)
        if sep < 0:
            return
        head = payload[pos:sep].decode("latin-1")
        lines = head.split("\r\n")
        headers: dict[str, str] = {}
        for ln in lines[1:]:
            k, _, v = ln.partition(":")
            k = k.strip().lower()
            k = {"c": "content-type", "l": "content-length"}.get(k, k)
            headers.setdefault(k, v.strip())
        try:
            clen = int(headers.get("content-length", len(payload) - sep - 4))
        except ValueError:
            clen = len(payload) - sep - 4
        end = min(len(payload), sep + 4 + max(clen, 0))
        yield pos, sep + 4, end, lines[0], headers
        pos = end


def blank_digits(ctype: str, body: bytes) -> tuple[bytes, int]:
    """(body with digit characters replaced, how many were replaced); same length."""
    ctype = ctype.split(";")[0].strip().lower()
    if ctype == "application/telephone-event":
        b = bytearray(body)
        n = 0
        for i in range(0, len(b) - len(b) % 4, 4):
            if b[i] <= 15:
                b[i] = 0xFF
                n += 1
        return bytes(b), n
    if ctype == "application/dtmf":
        return _KEYPAD.subn(b"X", body)
    key = {"application/dtmf-relay": rb"signal", "application/vnd.nortelnetworks.digits": rb"d"}
    if ctype not in key:
        return body, 0
    count = 0

    def sub(m: re.Match) -> bytes:
        nonlocal count
        value, n = _KEYPAD.subn(b"X", m.group(2))
        count += n
        return m.group(1) + value

    pattern = re.compile(rb"(?im)^([ \t]*" + key[ctype] + rb"[ \t]*=[ \t]*)([^\r\n]*)")
    return pattern.sub(sub, body), count


# -- streams -------------------------------------------------------------------


@dataclass
class Stream:
    key: tuple
    codec: str
    packets: list[tuple[int, int, int, int, int, int]] = field(default_factory=list)
    # (record index, seq, ts, payload start in frame, payload length, pad)


@dataclass
class Analysis:
    loc: dict[int, L4]
    streams: dict[tuple, Stream]
    events: list[int]
    infos: list[tuple[int, int, int, str]]  # (record, body start in payload, body end, ctype)
    unsupported: dict[str, int]
    sip_packets: int


def _rtp_header(p: bytes) -> tuple[int, int, int, int, int, int] | None:
    """(pt, seq, ts, ssrc, header length, padding) of an RTP packet, or None."""
    if len(p) < 12 or p[0] >> 6 != 2:
        return None
    if 192 <= p[1] <= 223:  # RTCP
        return None
    try:
        rtp = dpkt.rtp.RTP(p)
    except (dpkt.UnpackError, struct.error):
        return None
    hl = 12 + 4 * rtp.cc
    if rtp.x:
        if len(p) < hl + 4:
            return None
        hl += 4 + 4 * struct.unpack(">H", p[hl + 2 : hl + 4])[0]
    pad = p[-1] if rtp.p and len(p) > hl else 0
    if hl + pad > len(p):
        return None
    return rtp.pt, rtp.seq, rtp.ts, rtp.ssrc, hl, pad


def analyse(cap: Capture) -> Analysis:
    from masker.wire.sdp import parse_sdp

    locs: dict[int, L4] = {}
    sdp: dict[tuple[str, int], dict[int, tuple[str, int]]] = {}
    infos = []
    sip_packets = 0
    rtp: list[tuple[int, L4, tuple]] = []
    for i, r in enumerate(cap.records):
        if r.frame_at < 0:
            continue
        frame = r.frame
        loc = locate(r.linktype, frame)
        if loc is None:
            continue
        locs[i] = loc
        payload = loc.payload(frame)
        if _SIP_START.match(payload):
            sip_packets += 1
            for _, body_at, end, first, headers in sip_messages(payload):
                ctype = headers.get("content-type", "").split(";")[0].strip().lower()
                if ctype == "application/sdp" and end > body_at:
                    try:
                        sess = parse_sdp(payload[body_at:end].decode("utf-8", "replace"))
                    except ValueError:
                        continue
                    for m in sess.media:
                        addr = sess.address_of(m)
                        if m.kind == "audio" and m.port and addr:
                            sdp[(addr, m.port)] = m.rtpmap()
                elif first.startswith("INFO ") and ctype in _DIGIT_TYPES:
                    infos.append((i, body_at, end, ctype))
            continue
        if loc.proto == 17:
            h = _rtp_header(payload)
            if h is not None:
                rtp.append((i, loc, h))
    streams: dict[tuple, Stream] = {}
    events: list[int] = []
    unsupported: dict[str, int] = {}
    guess: dict[tuple, list[tuple[int, bytes]]] = {}
    for i, loc, (pt, seq, ts, ssrc, hl, pad) in rtp:
        flow = (_ip(loc.src), loc.sport, _ip(loc.dst), loc.dport)
        pts = sdp.get((flow[2], flow[3])) or sdp.get((flow[0], flow[1]))
        name = (pts or {}).get(pt, _STATIC.get(pt) if pts is None else None)
        codec = name[0].upper() if name else None
        if codec == "TELEPHONE-EVENT":
            events.append(i)
            continue
        if codec in G711_LAW:
            s = streams.setdefault((*flow, ssrc, codec), Stream((*flow, ssrc, codec), codec))
            size = len(loc.payload(cap.records[i].frame)) - hl - pad
            s.packets.append((i, seq, ts, loc.payload_at + hl, size, pad))
        elif codec is not None:
            unsupported[codec] = unsupported.get(codec, 0) + 1
        elif pts is None and 96 <= pt <= 127:
            whole = loc.payload(cap.records[i].frame)
            payload = whole[hl : len(whole) - pad]
            guess.setdefault((*flow, ssrc, pt), []).append((i, payload))
    for packets in guess.values():
        if len(packets) >= 2 and all(
            p and len(p) % 4 == 0 and all(p[k] <= 15 for k in range(0, len(p), 4))
            for _, p in packets
        ):
            events.extend(i for i, _ in packets)
    return Analysis(locs, streams, sorted(events), infos, unsupported, sip_packets)


def stream_timeline(cap: Capture, s: Stream):
    """(codes on a timeline, [(record, position, payload start, length)] in sequence order)."""
    order = []
    ext = prev = None
    for i, seq, ts, at, n, _ in s.packets:  # arrival order: extend the 16-bit sequence number
        ext = seq if ext is None else ext + ((seq - prev + 0x8000) & 0xFFFF) - 0x8000
        prev = seq
        order.append((ext, i, ts, at, n))
    order.sort(key=lambda o: o[0])
    placed = []
    pos = 0
    last = None
    seen: dict[int, int] = {}
    for e, i, ts, at, n in order:
        if e in seen:  # a duplicate: same place as the first copy
            placed.append((i, seen[e], at, n))
            continue
        if last is not None:
            gap = (ts - last[0]) & 0xFFFFFFFF
            gap = gap if gap < 0x80000000 else 0
            pos = last[1] + max(last[2], min(gap, int(MAX_GAP_S * RATE)))
        seen[e] = pos
        placed.append((i, pos, at, n))
        last = (ts, pos, max(n, 0))
    total = max((p + max(n, 0) for _, p, _, n in placed), default=0)
    silence = g711.ULAW_SILENCE if s.codec == "PCMU" else g711.ALAW_SILENCE
    codes = np.full(total, silence, np.uint8)
    for i, p, at, n in reversed(placed):  # the first copy of a duplicate wins
        if n > 0:
            codes[p : p + n] = np.frombuffer(cap.records[i].frame[at : at + n], np.uint8)
    return codes, placed


def scrub(cap: Capture, mode: str, lookahead_ms: int, dry_run: bool = False) -> dict[str, Any]:
    """Mask, remove and blank in `cap` (in place unless dry_run); returns the report."""
    from masker.scrub import channel_masking

    a = analyse(cap)
    report: dict[str, Any] = {
        "packets": sum(1 for r in cap.records if r.frame_at >= 0),
        "streams": [],
        "events_removed": 0,
        "info_blanked": 0,
        "unsupported": a.unsupported,
        "seconds": 0.0,
        "keys": 0,
    }
    timelines = []
    for s in a.streams.values():
        codes, placed = stream_timeline(cap, s)
        timelines.append((s, codes, placed))
    results = channel_masking.run(
        [g711.decode(c, G711_LAW[s.codec]) for s, c, _ in timelines],
        RATE,
        mode=mode,
        lookahead_ms=lookahead_ms,
        keep_audio=not dry_run,
    )
    for (s, codes, placed), res in zip(timelines, results, strict=True):
        report["seconds"] += len(codes) / RATE
        report["keys"] += len(res.keys)
        report["streams"].append(
            {
                "stream": f"{s.key[0]}:{s.key[1]} -> {s.key[2]}:{s.key[3]} ssrc {s.key[4]:08x}",
                "codec": s.codec,
                "packets": len(s.packets),
                "seconds": round(len(codes) / RATE, 3),
                "keys": [
                    {"start_ms": round(k0 / 8, 1), "end_ms": round(k1 / 8, 1)}
                    for k0, k1 in res.keys
                ],
                "masked": [
                    {"start_ms": round(x0 / 8, 1), "end_ms": round(x1 / 8, 1)}
                    for x0, x1 in res.spans
                ],
                "band_stopped": [
                    {"start_ms": round(x0 / 8, 1), "end_ms": round(x1 / 8, 1)}
                    for x0, x1 in res.stopped
                ],
            }
        )
        if dry_run or not (res.spans or res.stopped):
            continue
        law = G711_LAW[s.codec]
        new = codes.copy()
        for x0, x1 in merge_spans(res.spans + res.stopped):
            seg = res.audio[x0:x1]
            same = g711.decode(codes[x0:x1], law) == seg
            new[x0:x1] = np.where(same, codes[x0:x1], g711.encode(seg, law))
        changed = new != codes
        for i, p, at, n in placed:
            if n > 0 and changed[p : p + n].any():
                rec = cap.records[i]
                frame = rec.frame
                payload = bytearray(a.loc[i].payload(frame))
                off = at - a.loc[i].payload_at
                old = np.frombuffer(frame[at : at + n], np.uint8)
                # a duplicate that differs from the first copy keeps its own unmasked samples
                fill = np.where(changed[p : p + n], new[p : p + n], old)
                payload[off : off + n] = fill.tobytes()
                rec.set_frame(with_payload(frame, a.loc[i], bytes(payload)))
    report["events_removed"] = len(a.events)
    for i, body_at, end, ctype in a.infos:
        rec = cap.records[i]
        loc = a.loc[i]
        payload = loc.payload(rec.frame)
        body, n = blank_digits(ctype, payload[body_at:end])
        if n:
            report["info_blanked"] += 1
            if not dry_run:
                payload = payload[:body_at] + body + payload[end:]
                rec.set_frame(with_payload(rec.frame, loc, payload))
    if not dry_run:
        for i in a.events:
            cap.records[i].keep = False
    return report


def leaks(path: str, multimon: bool = False) -> dict[str, Any]:
    """Read a scrubbed capture back: digits spandsp hears in each audio stream,
    telephone-event packets and INFO digit bodies left, bad checksums."""
    from masker.scrub import verify

    cap = read_capture(path)
    a = analyse(cap)
    out = {"spandsp": 0, "events": len(a.events), "info_digits": 0, "bad_checksums": 0}
    if multimon:
        out["multimon"] = 0
    for s in a.streams.values():
        codes, _ = stream_timeline(cap, s)
        pcm = g711.decode(codes, G711_LAW[s.codec])
        out["spandsp"] += verify.spandsp_count(pcm, RATE)
        if multimon:
            out["multimon"] += verify.multimon_count(pcm, RATE)
    for i, body_at, end, ctype in a.infos:
        body = a.loc[i].payload(cap.records[i].frame)[body_at:end]
        out["info_digits"] += blank_digits(ctype, body)[1]
    for i, loc in a.loc.items():
        if not checksum_ok(cap.records[i].frame, loc):
            out["bad_checksums"] += 1
    return out
