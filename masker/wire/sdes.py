"""SDES (RFC 4568): the a=crypto lines of SRTP (RFC 3711) and each leg's choice of
crypto suite and keys, per leg, independently of the other leg.

Each side's a=crypto carries the key it *sends* with: a leg's SRTP is our own key
(fresh, random, per leg and suite) for what we send and the peer's key for what we
receive.  `[media] srtp_caller` / `srtp_agent` (`SdesLeg.mode`):

- "off": plain RTP/AVP only (RTP/SAVP streams are refused as today, a=crypto of an
  RTP/AVP offer is ignored and never forwarded);
- "offer": SRTP when the peer wants it: its RTP/SAVP (or RTP/AVP with a=crypto)
  offer is answered with a=crypto, a plain offer plainly; our offers are RTP/AVP with
  a=crypto (best-effort SRTP: a plain answer gives plain RTP);
- "require": SRTP only: plain offers and answers are refused (488); our offers are
  RTP/SAVP.

Offers whose only crypto lines we cannot use (unknown suite, MKI, several keys,
session parameters, bad key length) are refused when SRTP is required or the
profile is RTP/SAVP.  Key material lives in bytearrays, is never in a repr and is
overwritten by `wipe()`; pure code, no sockets.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from dataclasses import dataclass, field

#: Suites we support, in order of preference -> master key + master salt length (bytes).
SUITES: dict[str, int] = {
    "AEAD_AES_256_GCM": 32 + 12,
    "AES_CM_128_HMAC_SHA1_80": 16 + 14,
    "AES_CM_128_HMAC_SHA1_32": 16 + 14,
}
PREFERENCE = tuple(SUITES)
MODES = ("off", "offer", "require")
SAVP = "RTP/SAVP"
AVP = "RTP/AVP"


class NoAcceptableCrypto(ValueError):
    """The peer's SDP has no SRTP we can use where SRTP is needed (answer 488)."""


def _wipe(buf: bytearray) -> None:
    buf[:] = bytes(len(buf))


@dataclass(eq=False)
class CryptoLine:
    """One usable a=crypto line: tag, suite and the master key + salt it carries."""

    tag: int
    suite: str
    key: bytearray = field(repr=False)


def parse_crypto(value: str) -> CryptoLine | None:
    """An a=crypto value (`<tag> <suite> inline:<key||salt>[|lifetime]`), or None when
    we cannot use it: unknown suite, MKI, several keys, session parameters, bad key."""
    parts = value.split()
    if len(parts) != 3:
        return None  # session parameters (UNENCRYPTED_SRTP, KDR, ...) are not supported
    tag_s, suite, params = parts
    if not tag_s.isdigit() or len(tag_s) > 9 or suite not in SUITES:
        return None
    if ";" in params or not params.startswith("inline:"):
        return None  # several keys, or a key method other than inline
    inline = params[len("inline:") :].split("|")
    if len(inline) > 2 or (len(inline) == 2 and ":" in inline[1]):
        return None  # an MKI
    b64 = inline[0]
    try:
        key = bytearray(base64.b64decode(b64 + "=" * (-len(b64) % 4), validate=True))
    except (binascii.Error, ValueError):
        return None
    if len(key) != SUITES[suite]:
        _wipe(key)
        return None
    return CryptoLine(int(tag_s), suite, key)


def format_crypto(tag: int, suite: str, key: bytearray) -> str:
    """The a=crypto value announcing `key` (master key + salt) under `tag`."""
    return f"{tag} {suite} inline:{base64.b64encode(bytes(key)).decode('ascii')}"


@dataclass(eq=False)
class SrtpKeys:
    """What the media plane needs for one leg: the suite, our key (what we send on the
    leg) and the peer's (what we receive).  The media plane owns and wipes its copy."""

    suite: str
    tx: bytearray = field(repr=False)
    rx: bytearray = field(repr=False)

    def same(self, other: SrtpKeys) -> bool:
        return (
            self.suite == other.suite
            and hmac.compare_digest(self.tx, other.tx)
            and hmac.compare_digest(self.rx, other.rx)
        )

    def wipe(self) -> None:
        _wipe(self.tx)
        _wipe(self.rx)


class SdesLeg:
    """One leg's SDES state on the SIP thread: our keys per suite, the tags we offered,
    and what our answer to the peer's last offer says."""

    def __init__(self, mode: str = "off") -> None:
        if mode not in MODES:
            raise ValueError("SRTP mode must be off, offer or require")
        self.mode = mode
        self._ours: dict[str, bytearray] = {}
        self._offered: dict[int, str] = {}  # tag -> suite of our last offer
        self._answer: tuple[int, str, str] | None = None  # (tag, suite, proto)
        #: the peer's last offer's anchored audio formats (masker.wire.sdp: an answer we
        #: forward to this leg may only name these); offer/answer state of the leg
        self.peer_formats: tuple[tuple[int, str, int], ...] = ()

    def __repr__(self) -> str:
        return f"SdesLeg(mode={self.mode!r})"

    def _key(self, suite: str) -> bytearray:
        key = self._ours.get(suite)
        if key is None:
            key = self._ours[suite] = bytearray(secrets.token_bytes(SUITES[suite]))
        return key

    def _keys(self, line: CryptoLine) -> SrtpKeys:
        return SrtpKeys(line.suite, bytearray(self._key(line.suite)), line.key)

    def take_offer(self, proto: str, crypto: list[str]) -> SrtpKeys | None:
        """The peer's offer: the leg's keys (None: plain RTP); raises NoAcceptableCrypto."""
        self._answer = None
        if self.mode == "off":
            return None  # an RTP/SAVP stream never gets here (restrict_to_maskable)
        lines = [c for c in map(parse_crypto, crypto) if c is not None]
        chosen = next((c for s in PREFERENCE for c in lines if c.suite == s), None)
        for c in lines:
            if c is not chosen:
                _wipe(c.key)
        if chosen is None:
            if proto.upper() == SAVP or self.mode == "require":
                raise NoAcceptableCrypto("no supported SRTP crypto suite offered")
            return None
        self._answer = (chosen.tag, chosen.suite, SAVP if proto.upper() == SAVP else AVP)
        return self._keys(chosen)

    def take_answer(self, proto: str, crypto: list[str]) -> SrtpKeys | None:
        """The peer's answer to our offer: the leg's keys (None: plain RTP)."""
        if self.mode == "off":
            return None
        lines = [c for c in map(parse_crypto, crypto) if c is not None]
        chosen = next((c for c in lines if self._offered.get(c.tag) == c.suite), None)
        for c in lines:
            if c is not chosen:
                _wipe(c.key)
        if chosen is None:
            if proto.upper() == SAVP or self.mode == "require":
                raise NoAcceptableCrypto("answer without a crypto line we offered")
            return None
        return self._keys(chosen)

    def offer(self) -> tuple[str, list[tuple[str, str | None]]]:
        """Profile and a=crypto attributes of our offer to the peer."""
        if self.mode == "off":
            self._offered = {}
            return AVP, []
        self._offered = {i + 1: s for i, s in enumerate(PREFERENCE)}
        attrs: list[tuple[str, str | None]] = [
            ("crypto", format_crypto(tag, s, self._key(s))) for tag, s in self._offered.items()
        ]
        return (SAVP if self.mode == "require" else AVP), attrs

    def answer(self) -> tuple[str, list[tuple[str, str | None]]]:
        """Profile and a=crypto attribute of our answer to the peer's last offer."""
        if self._answer is None:
            return AVP, []
        tag, suite, proto = self._answer
        return proto, [("crypto", format_crypto(tag, suite, self._key(suite)))]

    def wipe(self) -> None:
        """The call ended: overwrite and forget our keys."""
        for key in self._ours.values():
            _wipe(key)
        self._ours.clear()
        self._offered = {}
        self._answer = None
