"""SDP (RFC 4566) parse/build and the offer/answer rewrites (RFC 3264) the B2BUA needs.

The masker anchors media, so every body crossing it is rewritten: codecs it
cannot mask are removed, c=/m= point at our own ports, ICE/crypto/rtcp-mux
lines that would bypass the anchor are dropped, and o= is ours.  SRTP (SDES) is
negotiated per leg (masker.wire.sdes): the forwarded body carries the other leg's
profile and our own a=crypto, never the sender's.  Pure functions over
dataclasses; the SIP layer only moves strings.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace

from masker.wire.sdes import AVP, SAVP, NoAcceptableCrypto, SdesLeg, SrtpKeys

#: Codecs the masker can decode, mask and re-encode (encoding name -> static PT); all
#: run an 8,000 Hz RTP clock (G.722 too, RFC 3551, though it samples at 16 kHz).
MASKABLE = {"PCMU": 0, "PCMA": 8, "G722": 9}
TELEPHONE_EVENT = "TELEPHONE-EVENT"
#: telephone-event clocks accepted (RFC 4733): narrowband and wideband.
EVENT_CLOCKS = (8000, 16000)
_STATIC = {0: ("PCMU", 8000), 8: ("PCMA", 8000), 9: ("G722", 8000)}
#: `[media] codecs`: the codecs either leg may use, in order of preference.  An offer
#: with no G.711 codec (G.722 only) is forwarded with the listed G.711 codecs added
#: after its own, in this order, so a G.711-only peer can answer and the media plane
#: transcodes; an offer with one is forwarded with its own codecs only (the other leg
#: answers one of them: no transcoding, and no narrowband audio upsampled for nothing).
#: Set once at start-up (`set_codecs`).
_codecs: tuple[str, ...] = ("PCMU", "PCMA", "G722")


def set_codecs(names: list[str] | tuple[str, ...]) -> None:
    """The service's `[media] codecs` (validated: known names, at least one)."""
    global _codecs
    upper = tuple(n.upper() for n in names)
    if not upper or any(n not in MASKABLE for n in upper) or len(set(upper)) != len(upper):
        raise ValueError(f"codecs must be distinct names among {', '.join(MASKABLE)}")
    _codecs = upper


def codecs() -> tuple[str, ...]:
    """The codecs either leg may use, in order of preference (`set_codecs`)."""
    return _codecs


#: Attributes dropped from forwarded media sections: they would route media around us.
_DROP_ATTRS = {
    "candidate",
    "ice-ufrag",
    "ice-pwd",
    "ice-options",
    "ice-lite",
    "rtcp-mux",
    "rtcp",
    "crypto",
    "fingerprint",
    "setup",
    "end-of-candidates",
    "remote-candidates",
}
DIRECTIONS = ("sendrecv", "sendonly", "recvonly", "inactive")
MAX_SDP = 16384


class SdpError(ValueError):
    """Malformed SDP (answer 400) or an offer we cannot mask (answer 488)."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Media:
    """One m= section: the m= fields, an optional c= address and ordered other lines."""

    kind: str
    port: int
    proto: str
    formats: list[str]
    connection: str | None = None
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    other: list[str] = field(default_factory=list)  # i=, b=, k= lines kept verbatim

    def attr(self, name: str) -> list[str | None]:
        return [v for k, v in self.attributes if k == name]

    @property
    def direction(self) -> str:
        for k, _ in self.attributes:
            if k in DIRECTIONS:
                return k
        return "sendrecv"

    def rtpmap(self) -> dict[int, tuple[str, int]]:
        """payload type -> (upper-case encoding name, clock rate), statics included."""
        out: dict[int, tuple[str, int]] = {}
        for fmt in self.formats:
            if fmt.isdigit() and int(fmt) in _STATIC:
                out[int(fmt)] = _STATIC[int(fmt)]
        for v in self.attr("rtpmap"):
            try:
                pt_s, enc = (v or "").split(None, 1)
                parts = enc.split("/")
                out[int(pt_s)] = (parts[0].upper(), int(parts[1]) if len(parts) > 1 else 8000)
            except ValueError:
                continue
        return out


@dataclass
class Session:
    """A whole SDP body."""

    origin: str
    name: str = "-"
    connection: str | None = None
    timing: str = "0 0"
    attributes: list[tuple[str, str | None]] = field(default_factory=list)
    other: list[str] = field(default_factory=list)
    media: list[Media] = field(default_factory=list)

    def audio(self) -> Media | None:
        """The first audio section with a non-zero port (the one we anchor)."""
        for m in self.media:
            if m.kind == "audio" and m.port != 0:
                return m
        return None

    def address_of(self, m: Media) -> str | None:
        conn = m.connection or self.connection
        if not conn:
            return None
        parts = conn.split()
        return parts[2].split("/")[0] if len(parts) >= 3 else None


def _conn(text: str) -> str:
    parts = text.split()
    if len(parts) != 3 or parts[0] != "IN" or parts[1] not in ("IP4", "IP6"):
        raise SdpError("bad c= line")
    return text


def _attr(text: str) -> tuple[str, str | None]:
    if ":" in text:
        k, v = text.split(":", 1)
        return k.strip(), v.strip()
    return text.strip(), None


def parse_sdp(text: str) -> Session:
    """Parse an SDP body; raise SdpError(400) when it is malformed."""
    if len(text) > MAX_SDP:
        raise SdpError("SDP too large")
    lines = [ln for ln in text.replace("\r\n", "\n").split("\n") if ln.strip()]
    if not lines or lines[0].strip() != "v=0":
        raise SdpError("SDP must start with v=0")
    sess = Session(origin="", timing="")
    cur: Media | None = None
    for ln in lines[1:]:
        if len(ln) < 2 or ln[1] != "=" or not ln[0].isalpha():
            raise SdpError("bad SDP line")
        key, val = ln[0], ln[2:].strip()
        if key == "m":
            cur = _media_line(val)
            sess.media.append(cur)
        elif cur is not None:
            _media_field(cur, key, val, ln.strip())
        else:
            _session_field(sess, key, val, ln.strip())
    if not sess.origin:
        raise SdpError("missing o= line")
    sess.timing = sess.timing or "0 0"
    for m in sess.media:
        if m.port and m.kind == "audio" and sess.address_of(m) is None:
            raise SdpError("audio stream without c= address")
    return sess


def _media_line(val: str) -> Media:
    """An m= line: media kind, port, protocol and formats."""
    parts = val.split()
    if len(parts) < 4 or not parts[1].split("/")[0].isdigit():
        raise SdpError("bad m= line")
    port = int(parts[1].split("/")[0])
    if port > 65535:
        raise SdpError("bad m= port")
    return Media(kind=parts[0], port=port, proto=parts[2], formats=parts[3:])


def _media_field(media: Media, key: str, val: str, line: str) -> None:
    """A line after an m= line belongs to that stream."""
    if key == "c":
        media.connection = _conn(val)
    elif key == "a":
        media.attributes.append(_attr(val))
    else:
        media.other.append(line)


def _session_field(sess: Session, key: str, val: str, line: str) -> None:
    """A line before the first m= line belongs to the session."""
    if key == "o":
        if len(val.split()) != 6:
            raise SdpError("bad o= line")
        sess.origin = val
    elif key == "s":
        sess.name = val or "-"
    elif key == "c":
        sess.connection = _conn(val)
    elif key == "t":
        sess.timing = val
    elif key == "a":
        sess.attributes.append(_attr(val))
    elif key == "v":
        raise SdpError("duplicate v= line")
    else:
        sess.other.append(line)


def _fmt_attr(a: tuple[str, str | None]) -> str:
    return f"a={a[0]}" if a[1] is None else f"a={a[0]}:{a[1]}"


def format_sdp(sess: Session) -> str:
    """Serialise with CRLF line ends, in RFC 4566 order."""
    out = ["v=0", f"o={sess.origin}", f"s={sess.name}"]
    out += [ln for ln in sess.other if ln[0] in "iuep"]
    if sess.connection:
        out.append(f"c={sess.connection}")
    out += [ln for ln in sess.other if ln[0] == "b"]
    out.append(f"t={sess.timing}")
    out += [ln for ln in sess.other if ln[0] not in "iuepb"]
    out += [_fmt_attr(a) for a in sess.attributes]
    for m in sess.media:
        out.append(f"m={m.kind} {m.port} {m.proto} {' '.join(m.formats)}")
        out += [ln for ln in m.other if ln[0] == "i"]
        if m.connection:
            out.append(f"c={m.connection}")
        out += [ln for ln in m.other if ln[0] != "i"]
        out += [_fmt_attr(a) for a in m.attributes]
    return "\r\n".join(out) + "\r\n"


@dataclass(frozen=True)
class Negotiated:
    """What the media plane needs from one side's SDP."""

    address: str
    port: int
    codec_pt: int
    codec: str  # "PCMU" | "PCMA"
    event_pt: int | None
    ptime: int
    direction: str
    #: every audio payload type of the stream that we can decode -> "PCMU"/"PCMA"
    audio_pts: tuple[tuple[int, str], ...] = ()
    #: RTCP address from a=rtcp (RFC 3605) as (address or "", port); None = RTP port + 1
    rtcp: tuple[str, int] | None = None
    #: SRTP of this leg (masker.wire.sdes), None = plain RTP; key material: no repr
    srtp: SrtpKeys | None = field(default=None, repr=False, compare=False)
    #: every telephone-event payload type of the stream -> its clock (8000 or 16000)
    event_clocks: tuple[tuple[int, int], ...] = ()
    #: an answer's: the (payload type, codec) the body forwarded to the other leg
    #: gives that leg (differs from `codec` when the media plane transcodes); None
    #: for an offer
    peer: tuple[int, str] | None = None

    @property
    def on_hold(self) -> bool:
        return self.direction in ("sendonly", "inactive") or self.address in ("0.0.0.0", "::")


def restrict_to_maskable(sess: Session, savp: bool = False) -> Session:
    """Keep only the maskable codecs of `codecs()` and telephone-event (8000 or 16000 Hz
    clock) in the audio streams we anchor.

    Other media sections are disabled (port 0) because the masker relays only audio;
    so are RTP/SAVP streams unless `savp` (the leg may use SRTP).
    Raises SdpError(488) when no audio stream can be masked.
    """
    out = replace(sess, media=[], attributes=list(sess.attributes))
    anchored = False
    protos = (AVP, SAVP) if savp else (AVP,)
    for m in sess.media:
        m = replace(m, formats=list(m.formats), attributes=list(m.attributes), other=list(m.other))
        if m.port == 0 or m.kind != "audio" or m.proto.upper() not in protos or anchored:
            m.port = 0
            out.media.append(m)
            continue
        rtpmap = m.rtpmap()
        keep = []
        for fmt in m.formats:
            if not fmt.isdigit() or int(fmt) not in rtpmap:
                continue
            enc, rate = rtpmap[int(fmt)]
            if (rate == 8000 and enc in _codecs) or (
                enc == TELEPHONE_EVENT and rate in EVENT_CLOCKS
            ):
                keep.append(fmt)
        if not any(rtpmap[int(f)][0] in MASKABLE for f in keep):
            m.port = 0
            out.media.append(m)
            continue
        kept = {f for f in keep}
        m.formats = keep
        m.attributes = [
            (k, v)
            for k, v in m.attributes
            if k not in _DROP_ATTRS
            and not (k in ("rtpmap", "fmtp") and (v or "").split(" ", 1)[0] not in kept)
        ]
        anchored = True
        out.media.append(m)
    if not anchored:
        raise SdpError(f"no maskable audio codec offered ({'/'.join(_codecs)})", status=488)
    out.attributes = [(k, v) for k, v in out.attributes if k not in _DROP_ATTRS]
    return out


def negotiated(sess: Session) -> Negotiated:
    """The first anchored audio stream's address, codec and telephone-event PT."""
    m = sess.audio()
    if m is None:
        raise SdpError("no active audio stream", status=488)
    rtpmap = m.rtpmap()
    codec_pt, codec, event_pt = None, None, None
    audio_pts, event_clocks = [], []
    for fmt in m.formats:
        if not fmt.isdigit() or int(fmt) not in rtpmap:
            continue
        enc, rate = rtpmap[int(fmt)]
        if enc in MASKABLE and rate == 8000:
            audio_pts.append((int(fmt), enc))
        if codec is None and enc in MASKABLE and rate == 8000:
            codec_pt, codec = int(fmt), enc
        elif enc == TELEPHONE_EVENT and rate in EVENT_CLOCKS:
            event_clocks.append((int(fmt), rate))
            if event_pt is None:
                event_pt = int(fmt)
    if codec is None or codec_pt is None:
        raise SdpError("no maskable audio codec", status=488)
    ptime = 20
    for v in m.attr("ptime"):
        try:
            ptime = int(float(v or "20"))
        except ValueError:
            raise SdpError("bad a=ptime") from None
    ptime = min(max(ptime, 10), 40)
    address = sess.address_of(m) or "0.0.0.0"
    return Negotiated(
        address,
        m.port,
        codec_pt,
        codec,
        event_pt,
        ptime,
        m.direction,
        tuple(audio_pts),
        event_clocks=tuple(event_clocks),
    )


def _formats(m: Media) -> tuple[tuple[int, str, int], ...]:
    """(payload type, encoding, clock) of a stream's formats that rtpmap names."""
    rtpmap = m.rtpmap()
    return tuple((int(f), *rtpmap[int(f)]) for f in m.formats if f.isdigit() and int(f) in rtpmap)


#: The narrowband codecs: an offer naming one of them needs no codec added.
NARROWBAND = ("PCMU", "PCMA")


def add_codecs(sess: Session) -> Session:
    """An offer without a G.711 codec gets the G.711 `codecs()` added after its own audio
    formats (static payload types, with a=rtpmap): a G.711-only answerer can take one
    and the media plane transcodes.  Any other offer is left as it is."""
    m = sess.audio()
    if m is None:
        return sess
    have = {enc for _, enc, _ in _formats(m)} | {f for f in m.formats}
    if have & set(NARROWBAND):
        return sess
    extra = [n for n in _codecs if n in NARROWBAND and str(MASKABLE[n]) not in have]
    if not extra:
        return sess
    audio = [i for i, (_, enc, _) in enumerate(_formats(m)) if enc in MASKABLE]
    at = (audio[-1] + 1) if audio else 0
    m.formats[at:at] = [str(MASKABLE[n]) for n in extra]
    m.attributes += [("rtpmap", f"{MASKABLE[n]} {n}/8000") for n in extra]
    return sess


def answer_within(sess: Session, offered: tuple[tuple[int, str, int], ...]) -> tuple[int, str]:
    """Make an answer's anchored stream name only formats of `offered` (the offer its
    receiver made, RFC 3264 6.1), in place.  Returns the (payload type, codec) the
    receiver then uses: the answer's own codec when it was offered (passed through),
    else the receiver's first offered codec among `codecs()` (transcoded)."""
    m = sess.audio()
    assert m is not None  # negotiated() found it
    mine = _formats(m)
    offered_audio = [(pt, enc) for pt, enc, rate in offered if enc in MASKABLE and rate == 8000]
    names = {enc for _, enc in offered_audio}
    first = next(((pt, enc) for pt, enc, rate in mine if enc in MASKABLE and rate == 8000), None)
    if first is not None and first[1] in names:
        within = {
            f"{pt}" for pt, enc, rate in mine if (enc, rate) in {(e, r) for _, e, r in offered}
        }
        if set(m.formats) <= within:
            return first  # the usual case: the answer is left as it is
    chosen = first if first is not None and first[1] in names else None
    if chosen is None:
        chosen = next((a for a in offered_audio if a[1] in _codecs), None)
    if chosen is None:
        raise SdpError("no codec of the offer can be used", status=488)
    chosen = next((a for a in offered_audio if a[1] == chosen[1]), chosen)
    events = [(pt, rate) for pt, enc, rate in offered if enc == TELEPHONE_EVENT]
    mine_events = {rate for _, enc, rate in mine if enc == TELEPHONE_EVENT}
    events = [e for e in events if e[1] in mine_events] or events[:1]
    m.formats = [str(chosen[0])] + [str(pt) for pt, _ in events[:1]]
    m.attributes = [(k, v) for k, v in m.attributes if k not in ("rtpmap", "fmtp")]
    m.attributes.append(("rtpmap", f"{chosen[0]} {chosen[1]}/8000"))
    for pt, rate in events[:1]:
        m.attributes += [("rtpmap", f"{pt} telephone-event/{rate}"), ("fmtp", f"{pt} 0-16")]
    return chosen


def anchor(sess: Session, address: str, port: int, origin: str) -> Session:
    """Point the anchored audio stream at (address, port) and replace o= with ours.

    A hold (c=0.0.0.0 or a=sendonly/inactive) is kept as a direction attribute so
    the far end still sees the hold but sends, if anything, to us.
    """
    out = replace(sess, media=[], attributes=list(sess.attributes), origin=origin)
    fam = "IP6" if ":" in address else "IP4"
    held_by_addr = False
    for m in sess.media:
        m = replace(m, attributes=list(m.attributes), formats=list(m.formats), other=list(m.other))
        if m.port != 0 and m.kind == "audio":
            held_by_addr = sess.address_of(m) in ("0.0.0.0", "::")
            m.port = port
            m.connection = None
            if held_by_addr and m.direction == "sendrecv":
                m.attributes.append(("sendonly", None))
            elif held_by_addr and m.direction == "recvonly":
                m.attributes = [(k, v) for k, v in m.attributes if k != "recvonly"]
                m.attributes.append(("inactive", None))
        elif m.port == 0:
            m.connection = None
        out.media.append(m)
    out.connection = f"IN {fam} {address}"
    return out


class Origin:
    """Our o= line for one leg: fixed session id, version bumped on every change."""

    def __init__(self, address: str, user: str = "masker") -> None:
        self.session_id = secrets.randbelow(2**62) + 1
        self.version = self.session_id
        self.address = address
        self.user = user
        self._last: str | None = None

    def line(self, body_without_origin: str) -> str:
        if self._last is not None and self._last != body_without_origin:
            self.version += 1
        self._last = body_without_origin
        fam = "IP6" if ":" in self.address else "IP4"
        return f"{self.user} {self.session_id} {self.version} IN {fam} {self.address}"


def rtcp_of(parsed: Session, restricted: Session) -> tuple[str, int] | None:
    """The a=rtcp (RFC 3605) of the anchored stream, read from the body as received
    (restricting drops the line): (address or "" for the stream's own, port)."""
    m = restricted.audio()
    if m is None:
        return None
    original = parsed.media[restricted.media.index(m)]
    for v in original.attr("rtcp"):
        parts = (v or "").split()
        try:
            port = int(parts[0])
        except (IndexError, ValueError):
            continue
        if not 0 < port < 65536:
            continue
        address = parts[3] if len(parts) >= 4 and parts[1] == "IN" else ""
        return address, port
    return None


def rewrite(
    text: str,
    address: str,
    port: int,
    origin: Origin,
    *,
    sdes_from: SdesLeg | None = None,
    sdes_to: SdesLeg | None = None,
    offer: bool = True,
) -> tuple[str, Negotiated]:
    """Parse a body from one leg, restrict it, anchor it, and return it for the other leg
    together with what the sending side negotiated (its own address and codecs).

    With SDES state (masker.wire.sdes) for the leg the body comes from (`sdes_from`)
    and the one it goes to (`sdes_to`), each leg's SRTP is negotiated on its own:
    the sender's a=crypto gives its keys (`Negotiated.srtp`; raises SdpError(488)
    when its SRTP policy cannot be met) and the forwarded body gets the other leg's
    profile and our a=crypto for it.  `offer`: the body is an offer (else an answer)."""
    parsed = parse_sdp(text)
    sess = restrict_to_maskable(parsed, savp=sdes_from is not None and sdes_from.mode != "off")
    neg = replace(negotiated(sess), rtcp=rtcp_of(parsed, sess))
    m_audio = sess.audio()
    assert m_audio is not None  # negotiated() found it
    if offer:
        if sdes_from is not None:
            sdes_from.peer_formats = _formats(m_audio)
    elif sdes_to is not None and sdes_to.peer_formats:
        neg = replace(neg, peer=answer_within(sess, sdes_to.peer_formats))
    if sdes_from is not None:
        i, m = next((i, x) for i, x in enumerate(sess.media) if x is sess.audio())
        crypto = [v or "" for v in parsed.media[i].attr("crypto")]
        try:
            keys = (sdes_from.take_offer if offer else sdes_from.take_answer)(m.proto, crypto)
        except NoAcceptableCrypto as exc:
            raise SdpError(str(exc), status=488) from None
        neg = replace(neg, srtp=keys)
    anchored = anchor(add_codecs(sess) if offer else sess, address, port, origin="-")
    if sdes_to is not None:
        out_m = anchored.audio()
        assert out_m is not None  # anchor() keeps the stream negotiated() found
        proto, attrs = sdes_to.offer() if offer else sdes_to.answer()
        if out_m.proto.upper() != proto:
            out_m.proto = proto
        out_m.attributes += attrs
    body = format_sdp(anchored)
    anchored.origin = origin.line(body)
    return format_sdp(anchored), neg
