"""Requests outside any dialog: new calls, trunk health checks, and refusals."""

from __future__ import annotations

from typing import Any

import structlog
from sippy.SipHeader import SipHeader

from masker.sip.call_context import SipContext
from masker.sip.call_controller import CallController
from masker.sip.methods import EVENT_METHODS
from masker.sip.ua import allow_header, bad_event, bad_extension, required_extensions

log = structlog.get_logger()


class Dispatcher:
    """sippy's request callback for requests no dialog claimed."""

    def __init__(self, ctx: SipContext) -> None:
        self.ctx = ctx

    def recv_request(self, req: Any, sip_t: Any) -> Any:
        try:
            return self._dispatch(req, sip_t)
        except Exception as exc:
            log.exception("request dispatch failed", exc_type=type(exc).__name__)
            try:
                return (req.genResponse(500, "Server Internal Error"), None, None)
            except Exception:
                return None

    def _dispatch(self, req: Any, sip_t: Any) -> Any:
        method = req.getMethod()
        ua = self.ctx.config.sip.user_agent
        if method in EVENT_METHODS:  # KPML (RFC 4730) and every other event package
            log.info("sip.refused", leg="none", method=method, code=489)
            return (bad_event(req, ua), None, None)
        if req.getHFBody("to").getTag() is not None:
            if method == "ACK":
                return None
            return (req.genResponse(481, "Call/Transaction Does Not Exist", server=ua), None, None)
        if method not in ("ACK", "CANCEL") and required_extensions(req):
            return (bad_extension(req, ua), None, None)
        if method == "INVITE":
            cc = CallController(self.ctx, *self._pass_through(req))
            return cc.uaA.recvRequest(req, sip_t)
        if method == "OPTIONS":
            if self.ctx.draining:
                return (req.genResponse(503, "Service Unavailable", server=ua), None, None)
            resp = req.genResponse(200, "OK", server=ua)
            resp.appendHeader(allow_header())
            resp.appendHeader(SipHeader(name="accept", bodys="application/sdp"))
            return (resp, None, None)
        if method in ("BYE", "INFO", "ACK", "CANCEL", "PRACK", "UPDATE"):
            return (req.genResponse(481, "Call/Transaction Does Not Exist", server=ua), None, None)
        resp = req.genResponse(501, "Not Implemented", server=ua)
        resp.appendHeader(allow_header())
        return (resp, None, None)

    def _pass_through(self, req: Any) -> tuple[list[Any], str | None]:
        """Headers to copy onto the agent leg and the caller's User-Agent.  The agent id
        header (`[pbx] agent_id_header`) is never copied, whatever `pass_headers` says:
        the agent is named by the contact-centre side only (see CallController)."""
        pbx = self.ctx.config.pbx
        never = {pbx.agent_id_header.strip().lower()} - {""}
        headers: list[Any] = []
        user_agent: str | None = None
        for name in pbx.pass_headers:
            low = name.strip().lower()
            if low in never:
                continue
            if low == "user-agent":
                if req.countHFs("user-agent") > 0:
                    user_agent = str(req.getHFBody("user-agent"))
                continue
            headers.extend(h.getCopy() for h in req.getHFs(low))
        return headers, user_agent
