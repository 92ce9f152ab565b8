"""sippy's UA with the masker's in-dialog request policy.

- Methods the masker does not support in a dialog (UPDATE, REFER, PRACK,
  MESSAGE, ...) get 501 with a correct Allow header and leave the dialog alone.
- SUBSCRIBE and NOTIFY (KPML, RFC 4730, or any other event package) get
  489 Bad Event: the masker supports no event package and relays none.
- INFO, from either leg and in any dialog state, is answered 200 by the masker.
  It is relayed to the other leg only when `masker.sip.info.relay_verdict` allows
  it (its type is on `[sip] info_allowlist` and it cannot carry a key press); on
  the caller's leg the keys in it go to `on_info_digit`.
- INFO is rate-limited per dialog (issue 13): a token bucket of `[sip] info_burst`
  refilled at `info_rate` per second; each INFO takes one token and each key in it
  beyond the first another.  An INFO with no token left is answered 503 with
  Retry-After (RFC 5057: it fails the transaction only, never the dialog) before its
  body is read; keys over the budget of an admitted INFO are dropped.  Neither is
  ever relayed; dropped keys are counted and reported to `on_info_lost`, so the
  call's capture fails visibly instead of completing with a key missing.
- OPTIONS is answered 200 in any dialog state.
- A 2xx answer to an INVITE is shown to `on_answer` before sippy acts on it (the
  agent leg reads the agent id from the PBX's answer).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import structlog
from sippy.CCEvents import CCEventFail
from sippy.SipHeader import SipHeader
from sippy.UA import UA

from masker.sip.info import (
    DTMF_TYPES,
    body_bytes,
    info_keys,
    is_dtmf_info,
    media_type,
    relay_verdict,
)
from masker.sip.methods import ALLOW, ALLOWED, EVENT_METHODS

if TYPE_CHECKING:  # sippy has no type information: these names are Any to mypy
    from sippy.SipMsg import SipMsg
    from sippy.SipRequest import SipRequest
    from sippy.SipResponse import SipResponse
    from sippy.SipTransactionManager import SipTransaction

log = structlog.get_logger()


def allow_header() -> SipHeader:
    return SipHeader(name="allow", bodys=ALLOW)


def required_extensions(req: SipRequest) -> list[str]:
    """Option tags the request Requires (RFC 3261 8.2.2.3); the masker supports none."""
    tags: list[str] = []
    for hf in req.getHFs("require"):
        tags += [t.strip() for t in str(hf.getBody()).split(",") if t.strip()]
    return tags


def bad_extension(req: SipRequest, server: str | None) -> SipResponse:
    """420 Bad Extension naming what we do not support (e.g. session timers)."""
    resp = req.genResponse(420, "Bad Extension", server=server)
    resp.appendHeader(SipHeader(name="unsupported", bodys=", ".join(required_extensions(req))))
    return resp


def bad_event(req: SipRequest, server: str | None) -> SipResponse:
    """489 Bad Event (RFC 6665 8.3.2): no event package (KPML included) is supported."""
    return req.genResponse(489, "Bad Event", server=server)


#: Header on the 503 a node gives a new call it cannot take itself (draining, full, no
#: media ports); its value says why.  The cluster's dispatcher (deploy/kamailio/
#: cluster.cfg) sends such an INVITE to the next node, and relays a 503 without it
#: (the PBX's own, passed through) to the caller as it is.
REFUSED_HEADER = "X-Masker-Refused"


def node_unavailable(why: str, rtime: Any) -> CCEventFail:
    """The event that answers a new call 503 because this node cannot take it."""
    event = CCEventFail((503, "Service Unavailable"), rtime=rtime)
    event.extra_headers = (SipHeader(name=REFUSED_HEADER.lower(), bodys=why),)
    return event


def header_value(msg: SipMsg, name: str) -> str | None:
    """The values of a header joined by commas ('' when absent, None when unparsable)."""
    try:
        return ", ".join(str(h.getBody()) for h in msg.getHFs(name.lower()))
    except Exception:
        return None


class InfoBucket:
    """Token bucket of one dialog's INFO requests and keys (monotonic clock)."""

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.tokens = burst
        self.at = clock()

    def take(self, n: int) -> int:
        """Take up to `n` tokens; how many were taken."""
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        got = min(n, int(self.tokens))
        self.tokens -= got
        return got


class MaskerUA(UA):
    """A UA whose unsupported in-dialog requests are refused cleanly."""

    on_info_digit: Callable[[str], None] | None = None
    #: The INFO rate limit (None: unlimited) and what it refused or dropped.
    info_bucket: InfoBucket | None = None
    info_refused: int = 0
    info_keys_dropped: int = 0
    #: Called with the number of keys dropped by the rate limit (caller's leg; a refused
    #: INFO of a DTMF type counts as one key: its body is not read).
    on_info_lost: Callable[[int], None] | None = None
    #: True on the caller's leg: the keys in its INFO go to `on_info_digit`.
    read_info_digits: bool = False
    #: Content types of INFO that may be relayed (normalised, see info.normalise_allowlist).
    info_allowlist: frozenset[str] = frozenset()
    #: "caller" or "agent", for the log.
    leg: str = "caller"
    on_answer: Callable[[Any], None] | None = None

    def recvRequest(self, req: SipRequest, sip_t: SipTransaction) -> Any:
        method = req.getMethod()
        if method in EVENT_METHODS:
            log.info("sip.refused", leg=self.leg, method=method, code=489)
            return (bad_event(req, self.local_ua), None, None)
        if method not in ALLOWED:
            resp = req.genResponse(501, "Not Implemented", server=self.local_ua)
            resp.appendHeader(allow_header())
            return (resp, None, None)
        if method not in ("ACK", "CANCEL") and required_extensions(req):
            return (bad_extension(req, self.local_ua), None, None)
        if method == "INFO" and self.info_bucket is not None and not self.info_bucket.take(1):
            return (self._info_refused(req), None, None)
        if method == "INFO" and not self.info_relayed(req):
            return (req.genResponse(200, "OK", server=self.local_ua), None, None)
        if method == "OPTIONS" and not self.isConnected():
            resp = req.genResponse(200, "OK", server=self.local_ua)
            resp.appendHeader(allow_header())
            return (resp, None, None)
        return super().recvRequest(req, sip_t)

    def info_relayed(self, req: SipRequest) -> bool:
        """Read the keys of an INFO (caller's leg: hand them on) and say whether sippy may
        relay it; False means the masker answers it and it stops here."""
        body = req.getBody()
        ctype, raw = None, None
        if body is not None:
            ctype = str(body.mtype) if body.mtype is not None else ""
            content = body.content
            raw = body_bytes(content if isinstance(content, str) else str(content))
        keys = info_keys(ctype, raw) if raw else []
        if keys and self.read_info_digits and self.on_info_digit is not None:
            allowed = len(keys)
            if self.info_bucket is not None and allowed > 1:
                allowed = 1 + self.info_bucket.take(allowed - 1)  # the INFO's own token
            for key in keys[:allowed]:
                self.on_info_digit(key)
            if allowed < len(keys):
                self._info_lost(len(keys) - allowed)
        package = header_value(req, "info-package")
        encoding = header_value(req, "content-encoding")
        if keys:
            verdict: str | None = "keys"
        elif package is None or encoding is None:
            verdict = "bad_header"
        else:
            verdict = relay_verdict(ctype, raw, self.info_allowlist, package, encoding)
        if verdict is None and not self.isConnected():
            verdict = "not_connected"
        mtype = media_type(ctype)
        log.info(
            "sip.info",
            leg=self.leg,
            relayed=verdict is None,
            reason=verdict,
            type=mtype
            if mtype in DTMF_TYPES or mtype in self.info_allowlist
            else ("none" if ctype is None else "other"),
        )
        return verdict is None

    def _info_refused(self, req: SipRequest) -> SipResponse:
        """503 + Retry-After for an INFO over the dialog's rate (not read, not relayed)."""
        self.info_refused += 1
        if self.info_refused == 1 or self.info_refused % 1000 == 0:
            log.warning("sip.info_rate_limited", leg=self.leg, refused=self.info_refused)
        if self.read_info_digits:
            body = req.getBody()
            mtype = media_type(str(body.mtype)) if body is not None and body.mtype else ""
            if is_dtmf_info(mtype) or mtype.startswith("multipart/"):
                self._info_lost(1)
        resp = req.genResponse(503, "Service Unavailable", server=self.local_ua)
        resp.appendHeader(SipHeader(name="retry-after", bodys="1"))
        return resp

    def _info_lost(self, count: int) -> None:
        self.info_keys_dropped += count
        if self.on_info_lost is not None:
            try:
                self.on_info_lost(count)
            except Exception as exc:
                log.error("info loss hook failed", leg=self.leg, exc_type=type(exc).__name__)

    def recvResponse(self, resp: SipResponse, tr: SipTransaction) -> Any:
        if self.on_answer is not None:
            try:
                code = resp.getSCode()[0]
                method = resp.getHFBody("cseq").getCSeq()[1]
            except Exception:
                code, method = 0, ""
            if 200 <= code < 300 and method == "INVITE":
                try:
                    self.on_answer(resp)
                except Exception as exc:  # the answer must still reach the caller
                    log.error("answer hook failed", leg=self.leg, exc_type=type(exc).__name__)
        return super().recvResponse(resp, tr)
