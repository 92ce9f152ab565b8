"""One leg's SRTP/SRTCP contexts (RFC 3711, libsrtp through pylibsrtp).

A leg that negotiated SRTP (masker.wire.sdes) has two libsrtp sessions: one keyed
with the peer's key for what we receive (any SSRC, replay window per stream) and
one keyed with our own key for what we send (our masked stream and reports, and
what we relay from the other leg).  Packets that fail authentication or the replay
check are dropped and counted (`drop_srtp_auth`, `drop_srtp_replay`); nothing
about a key is ever logged.  `close()` overwrites the key bytes we hold and the
sessions' packet buffers and frees the libsrtp contexts (whose dealloc zeroises
the derived keys).  Only the media thread uses these objects.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pylibsrtp
from pylibsrtp import Policy, Session

from masker.wire.sdes import SrtpKeys

PROFILES = {
    "AEAD_AES_256_GCM": Policy.SRTP_PROFILE_AEAD_AES_256_GCM,
    "AES_CM_128_HMAC_SHA1_80": Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    "AES_CM_128_HMAC_SHA1_32": Policy.SRTP_PROFILE_AES128_CM_SHA1_32,
}
_FFI: Any = pylibsrtp.ffi  # type: ignore[attr-defined]


def _session(suite: str, key: bytearray, ssrc_type: int) -> Session:
    """A libsrtp session for `key` (master key + salt).  The key goes to libsrtp from a
    C buffer we overwrite once the session has derived its keys: no immutable copy."""
    policy = Policy(ssrc_type=ssrc_type, srtp_profile=PROFILES[suite])
    buf = _FFI.new("unsigned char[]", len(key))
    _FFI.memmove(buf, key, len(key))
    policy._policy.key = buf
    try:
        return Session(policy)
    finally:
        _FFI.memmove(buf, bytes(len(key)), len(key))
        policy._policy.key = _FFI.NULL


def _reason(exc: Exception) -> str:
    text = str(exc)
    if "replay" in text or "too old" in text:
        return "drop_srtp_replay"
    if "authentication" in text:
        return "drop_srtp_auth"
    return "drop_srtp_invalid"


class LegSrtp:
    """SRTP for one leg: `unprotect*` what the peer sent, `protect*` what we send."""

    __slots__ = ("_rx", "_tx", "keys")

    def __init__(self, keys: SrtpKeys) -> None:
        self.keys = keys
        self._rx: Session | None = _session(keys.suite, keys.rx, Policy.SSRC_ANY_INBOUND)
        self._tx: Session | None = _session(keys.suite, keys.tx, Policy.SSRC_ANY_OUTBOUND)

    def __repr__(self) -> str:
        return f"LegSrtp(suite={self.keys.suite!r})"

    def unprotect(self, data: bytes, counters: Counter[str]) -> bytes | None:
        try:
            return self._rx.unprotect(data)  # type: ignore[union-attr]
        except pylibsrtp.Error as exc:
            counters[_reason(exc)] += 1
        except (ValueError, AttributeError):  # longer than libsrtp's buffer; closed
            counters["drop_srtp_invalid"] += 1
        return None

    def unprotect_rtcp(self, data: bytes, counters: Counter[str]) -> bytes | None:
        try:
            return self._rx.unprotect_rtcp(data)  # type: ignore[union-attr]
        except pylibsrtp.Error as exc:
            counters[_reason(exc)] += 1
        except (ValueError, AttributeError):
            counters["drop_srtp_invalid"] += 1
        return None

    def protect(self, data: bytes, counters: Counter[str]) -> bytes | None:
        try:
            return self._tx.protect(data)  # type: ignore[union-attr]
        except (pylibsrtp.Error, ValueError, AttributeError):
            counters["srtp_protect_errors"] += 1
        return None

    def protect_rtcp(self, data: bytes, counters: Counter[str]) -> bytes | None:
        try:
            return self._tx.protect_rtcp(data)  # type: ignore[union-attr]
        except (pylibsrtp.Error, ValueError, AttributeError):
            counters["srtp_protect_errors"] += 1
        return None

    def close(self) -> None:
        """Wipe the keys and the sessions' last packets; free the libsrtp contexts."""
        self.keys.wipe()
        for sess in (self._rx, self._tx):
            buf = getattr(sess, "_buffer", None)
            if buf is not None:
                buf[:] = bytes(len(buf))
        self._rx = self._tx = None
