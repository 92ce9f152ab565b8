"""sippy's UA with the masker's in-dialog request policy.

- Methods the masker does not support in a dialog (UPDATE, REFER, PRACK,
  MESSAGE, ...) get 501 with a correct Allow header and leave the dialog alone.
- INFO carrying keypad digits is answered 200 and handed to `on_info_digit`,
  never to the other leg, in any dialog state.
- OPTIONS is answered 200 in any dialog state.
"""

from __future__ import annotations

from collections.abc import Callable

from sippy.SipHeader import SipHeader
from sippy.UA import UA

from masker.sip.info import info_digit, is_dtmf_info
from masker.sip.methods import ALLOW, ALLOWED


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


class MaskerUA(UA):
    """A UA whose unsupported in-dialog requests are refused cleanly."""

    on_info_digit: Callable[[str], None] | None = None
    #: True on the caller's leg: its DTMF INFO stops here.
    swallow_dtmf_info: bool = False

    def recvRequest(self, req, sip_t):  # noqa: N802 (sippy's name)
        method = req.getMethod()
        if method not in ALLOWED:
            resp = req.genResponse(501, "Not Implemented", server=self.local_ua)
            resp.appendHeader(allow_header())
            return (resp, None, None)
        if method not in ("ACK", "CANCEL") and required_extensions(req):
            return (bad_extension(req, self.local_ua), None, None)
        if method == "INFO":
            body = req.getBody()
            ctype = body.getType() if body is not None else None
            if self.swallow_dtmf_info and is_dtmf_info(ctype):
                digit = info_digit(ctype, str(body.content) if body is not None else "")
                if digit is not None and self.on_info_digit is not None:
                    self.on_info_digit(digit)
                return (req.genResponse(200, "OK", server=self.local_ua), None, None)
            if not self.isConnected():
                return (req.genResponse(200, "OK", server=self.local_ua), None, None)
        if method == "OPTIONS" and not self.isConnected():
            resp = req.genResponse(200, "OK", server=self.local_ua)
            resp.appendHeader(allow_header())
            return (resp, None, None)
        return super().recvRequest(req, sip_t)
