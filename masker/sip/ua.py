"""sippy's UA with the masker's in-dialog request policy.

- Methods the masker does not support in a dialog (UPDATE, REFER, PRACK,
  MESSAGE, ...) get 501 with a correct Allow header and leave the dialog alone.
- SUBSCRIBE and NOTIFY (KPML, RFC 4730, or any other event package) get
  489 Bad Event: the masker supports no event package and relays none.
- INFO, from either leg and in any dialog state, is answered 200 by the masker.
  It is relayed to the other leg only when `masker.sip.info.relay_verdict` allows
  it (its type is on `[sip] info_allowlist` and it cannot carry a key press); on
  the caller's leg the keys in it go to `on_info_digit`.
- OPTIONS is answered 200 in any dialog state.
- A 2xx answer to an INVITE is shown to `on_answer` before sippy acts on it (the
  agent leg reads the agent id from the PBX's answer).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog
from sippy.SipHeader import SipHeader
from sippy.UA import UA

from masker.sip.info import DTMF_TYPES, body_bytes, info_keys, media_type, relay_verdict
from masker.sip.methods import ALLOW, ALLOWED, EVENT_METHODS

log = structlog.get_logger()


def allow_header() -> SipHeader:
    return SipHeader(name="allow", bodys=ALLOW)


def required_extensions(req) -> list[str]:
    """Option tags the request Requires (RFC 3261 8.2.2.3); the masker supports none."""
    tags: list[str] = []
    for hf in req.getHFs("require"):
        tags += [t.strip() for t in str(hf.getBody()).split(",") if t.strip()]
    return tags


def bad_extension(req, server: str | None):
    """420 Bad Extension naming what we do not support (e.g. session timers)."""
    resp = req.genResponse(420, "Bad Extension", server=server)
    resp.appendHeader(SipHeader(name="unsupported", bodys=", ".join(required_extensions(req))))
    return resp


def bad_event(req, server: str | None):
    """489 Bad Event (RFC 6665 8.3.2): no event package (KPML included) is supported."""
    return req.genResponse(489, "Bad Event", server=server)


def header_value(msg, name: str) -> str | None:
    """The values of a header joined by commas ('' when absent, None when unparsable)."""
    try:
        return ", ".join(str(h.getBody()) for h in msg.getHFs(name.lower()))
    except Exception:
        return None


class MaskerUA(UA):
    """A UA whose unsupported in-dialog requests are refused cleanly."""

    on_info_digit: Callable[[str], None] | None = None
    #: True on the caller's leg: the keys in its INFO go to `on_info_digit`.
    read_info_digits: bool = False
    #: Content types of INFO that may be relayed (normalised, see info.normalise_allowlist).
    info_allowlist: frozenset[str] = frozenset()
    #: "caller" or "agent", for the log.
    leg: str = "caller"
    on_answer: Callable[[Any], None] | None = None

    def recvRequest(self, req, sip_t):  # noqa: N802 (sippy's name)
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
        if method == "INFO" and not self.info_relayed(req):
            return (req.genResponse(200, "OK", server=self.local_ua), None, None)
        if method == "OPTIONS" and not self.isConnected():
            resp = req.genResponse(200, "OK", server=self.local_ua)
            resp.appendHeader(allow_header())
            return (resp, None, None)
        return super().recvRequest(req, sip_t)

    def info_relayed(self, req) -> bool:
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
            for key in keys:
                self.on_info_digit(key)
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
        log.info("sip.info", leg=self.leg, relayed=verdict is None, reason=verdict,
                 type=mtype if mtype in DTMF_TYPES or mtype in self.info_allowlist else
                 ("none" if ctype is None else "other"))
        return verdict is None

    def recvResponse(self, resp, tr):  # noqa: N802 (sippy's name)
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
