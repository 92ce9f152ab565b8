"""One masked call: the trunk-side UAS leg, the PBX-side UAC leg, and the glue.

Every event passing between the legs is translated here: SDP bodies are
restricted to what the masker can mask and re-anchored on our media ports
(the media plane learns each side's address and codecs from them), INFO
crosses only when `[sip] info_allowlist` allows it (keys in the caller's INFO go
to the media/digit path), the agent id comes from the PBX side only (its answer's
`[pbx] agent_id_header`, else the agent leg's Request-URI user), and the call's
state goes to the registry.  Media
is freed in the disconnect/fail callbacks, not when sippy's UA objects die.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import structlog
from sippy.CCEvents import (
    CCEventConnect,
    CCEventDisconnect,
    CCEventFail,
    CCEventInfo,
    CCEventPreConnect,
    CCEventRing,
    CCEventTry,
    CCEventUpdate,
)
from sippy.MsgBody import MsgBody
from sippy.SipCallId import SipCallId

from masker.calls.ids import log_safe_hex
from masker.media.maskbank import SlotsExhausted
from masker.media.ports import PortsExhausted
from masker.runtime import metrics
from masker.sip.info import body_bytes, normalise_allowlist, relay_verdict
from masker.sip.ua import InfoBucket, MaskerUA, node_unavailable
from masker.wire.sdes import SdesLeg
from masker.wire.sdp import Origin, SdpError, rewrite

if TYPE_CHECKING:
    from masker.media.plane import MediaCall
    from masker.sip.call_context import SipContext

log = structlog.get_logger()


class CallController:
    """The B2BUA logic of one call (runs on sippy's event loop thread)."""

    def __init__(self, ctx: SipContext, pass_headers: list[Any], user_agent: str | None) -> None:
        self.ctx = ctx
        self.pass_headers = pass_headers
        self.caller_user_agent = user_agent
        self.info_allowlist = normalise_allowlist(ctx.config.sip.info_allowlist)
        self.uaA = MaskerUA(
            ctx.global_config,
            event_cb=self.recv_event,
            conn_cbs=(self._a_conn,),
            disc_cbs=(self._a_disc,),
            fail_cbs=(self._a_disc,),
            dead_cbs=(self._dead,),
        )
        self.uaA.local_ua = ctx.config.sip.user_agent
        self.uaA.leg = "caller"
        self.uaA.read_info_digits = True
        self.uaA.on_info_digit = self._info_digit
        self.uaA.info_allowlist = self.info_allowlist
        self.uaA.info_bucket = self._info_bucket()
        self.uaA.on_info_lost = self._info_lost
        self.uaO: MaskerUA | None = None
        self.agent_uri_user = ""
        self.agent_bound = False
        self.media: MediaCall | None = None
        self.id: str | None = None
        self.trunk_call_id = ""
        self.ended = False
        self.counted_active = False
        address = ctx.config.media.sdp_address
        self.origin_to_agent = Origin(address)
        self.origin_to_caller = Origin(address)
        # SDES/SRTP of each leg (masker.wire.sdes), and whether the last SDP we sent a
        # leg was an offer still to be answered (its next response body is the answer)
        self.sdes_caller = SdesLeg(ctx.config.media.srtp_caller)
        self.sdes_agent = SdesLeg(ctx.config.media.srtp_agent)
        self.offered_to = {"caller": False, "agent": False}

    # --- events between the legs --------------------------------------------------
    def recv_event(self, event: Any, ua: Any) -> None:
        try:
            if ua is self.uaA:
                self._from_caller(event)
            else:
                self._from_agent(event)
        except Exception as exc:
            log.exception("call event failed", call=self.id, exc_type=type(exc).__name__)
            self._fail_both(500, "Server Internal Error")

    def _from_caller(self, event: Any) -> None:
        if self.uaO is None:
            if not isinstance(event, CCEventTry):
                self.uaA.recvEvent(CCEventDisconnect(rtime=event.rtime))
                return
            self._start(event)
            return
        if isinstance(event, CCEventInfo) and not self._info_may_cross(event):
            return
        try:
            event = self._translate(event, to_agent=True)
        except SdpError as exc:
            self._refuse_offer(event, exc)
            return
        self.uaO.recvEvent(event)

    def _from_agent(self, event: Any) -> None:
        if isinstance(event, CCEventDisconnect) and not self.uaA.isConnected():
            # the PBX never answered the INVITE (sippy's no-reply timer): a clean 5xx
            self._log("agent_no_reply")
            self._fail_both(504, "Server Time-out")
            return
        if isinstance(event, CCEventInfo) and not self._info_may_cross(event):
            return
        if isinstance(event, CCEventRing) and self.id is not None:
            data = event.getData()
            early = data is not None and data[2] is not None
            self.ctx.registry.update_call(self.id, state="early_media" if early else "ringing")
            self._log("ringing", code=data[0] if data else 180)
        try:
            event = self._translate(event, to_agent=False)
        except SdpError as exc:
            log.warning("agent sdp refused", call=self.id, status=exc.status)
            self._fail_both(488, "Not Acceptable Here")
            return
        if isinstance(event, CCEventFail):
            self._log("agent_failed", code=event.getData()[0] if event.getData() else None)
        self.uaA.recvEvent(event)

    def _start(self, event: Any) -> None:
        ctx = self.ctx
        cid, cli, cld, body, _auth, caller_name = event.getData()
        self.trunk_call_id = str(cid)
        if ctx.draining:
            self._log("refused", reason="draining")
            self.uaA.recvEvent(node_unavailable("draining", event.rtime))
            return
        if ctx.active_calls() >= ctx.config.media.max_calls:
            self._log("refused", reason="max_calls")
            self.uaA.recvEvent(node_unavailable("max_calls", event.rtime))
            return
        max_fwd = getattr(event, "max_forwards", None)
        if max_fwd is not None and max_fwd - 1 <= 0:
            self.uaA.recvEvent(CCEventFail((483, "Too Many Hops"), rtime=event.rtime))
            return
        policy = ctx.config.masking.policy
        self.id = ctx.registry.add_call(self.trunk_call_id, policy=policy)
        ctx.calls[self.id] = self
        try:
            self.media = ctx.engine.open_call(self.id)
        except (PortsExhausted, SlotsExhausted):
            self._log("refused", reason="no_media_ports")
            self.uaA.recvEvent(node_unavailable("no_media_ports", event.rtime))
            return
        if policy == "capture":
            ctx.engine.arm(self.media, False)
            media = self.media
            ctx.registry.set_arm_hook(self.id, lambda armed: ctx.engine.arm(media, armed))
        if body is not None:
            try:
                body = self._anchor_body(body, to_agent=True)
            except SdpError as exc:
                self._log("refused", reason="sdp", status=exc.status)
                code, reason = (
                    (488, "Not Acceptable Here") if exc.status == 488 else (400, "Bad Request")
                )
                self.uaA.recvEvent(CCEventFail((code, reason), rtime=event.rtime))
                return
        pbx = ctx.config.pbx
        self.uaO = MaskerUA(
            ctx.global_config,
            event_cb=self.recv_event,
            username=pbx.username or None,
            password=pbx.password or None,
            nh_address=(pbx.address, pbx.port),
            conn_cbs=(self._o_conn,),
            disc_cbs=(self._o_disc,),
            fail_cbs=(self._o_disc,),
            dead_cbs=(self._dead,),
        )
        self.uaO.local_ua = self.caller_user_agent or ctx.config.sip.user_agent
        self.uaO.no_reply_time = pbx.no_reply_s  # sippy cancels and reports a disconnect
        self.uaO.leg = "agent"
        self.uaO.info_allowlist = self.info_allowlist
        self.uaO.info_bucket = self._info_bucket()
        self.uaO.on_answer = self._agent_answer
        self.agent_uri_user = str(cld or "")
        agent_cid = SipCallId(body=log_safe_hex(16))
        ctx.registry.update_call(self.id, agent_call_id=str(agent_cid))
        out = CCEventTry(
            (agent_cid, cli, cld, body, None, caller_name), rtime=event.rtime, origin=event.origin
        )
        if max_fwd is not None:
            out.max_forwards = max_fwd - 1
        out.reason_rfc3326 = event.reason_rfc3326
        if self.pass_headers:
            out.extra_headers = tuple(h.getCopy() for h in self.pass_headers)
        self._log("invite", agent_call_id=str(agent_cid), offer=body is not None)
        self.uaO.recvEvent(out)

    # --- SDP ------------------------------------------------------------------------
    def _translate(self, event: Any, to_agent: bool) -> Any:
        """A copy of the event with its SDP body re-anchored for the other leg."""
        data = event.getData()
        if isinstance(event, CCEventUpdate):
            if data is None:  # a re-INVITE without SDP: the response will carry an offer
                self.offered_to["agent" if to_agent else "caller"] = False
                return event
            new = event.getCopy()
            new.data = self._anchor_body(data, to_agent)
            return new
        if isinstance(event, (CCEventRing, CCEventConnect, CCEventPreConnect)):
            if data is None or data[2] is None:
                return event
            new = event.getCopy()
            # a response (or the ACK) answers our offer to that leg; without one it
            # is the offer of a request that had no SDP (late offer)
            offer = not self.offered_to["caller" if to_agent else "agent"]
            new.data = (data[0], data[1], self._anchor_body(data[2], to_agent, offer))
            return new
        return event

    def _anchor_body(self, body: Any, to_agent: bool, offer: bool = True) -> Any:
        if body.getType() != "application/sdp":
            raise SdpError("only application/sdp bodies are supported", status=488)
        text = body.localStr() if hasattr(body, "localStr") else str(body)
        media = self.media
        if media is None:
            raise SdpError("no media for this call", status=488)
        address = self.ctx.config.media.sdp_address
        if to_agent:
            new_text, neg = rewrite(
                text,
                address,
                media.agent_port,
                self.origin_to_agent,
                sdes_from=self.sdes_caller,
                sdes_to=self.sdes_agent,
                offer=offer,
            )
            self.ctx.engine.set_caller_sdp(media, neg)
            if self.id is not None and self.uaA.isConnected():
                self.ctx.registry.update_call(self.id, state="held" if neg.on_hold else "connected")
        else:
            new_text, neg = rewrite(
                text,
                address,
                media.caller_port,
                self.origin_to_caller,
                sdes_from=self.sdes_agent,
                sdes_to=self.sdes_caller,
                offer=offer,
            )
            self.ctx.engine.set_agent_sdp(media, neg)
        if offer:
            self.offered_to["agent" if to_agent else "caller"] = True
            self.offered_to["caller" if to_agent else "agent"] = False
        out = MsgBody(new_text)
        out.needs_update = False
        return out

    def _refuse_offer(self, event: Any, exc: SdpError) -> None:
        """A re-INVITE/ACK body from the caller we cannot mask: refuse it, keep the call."""
        code, reason = (488, "Not Acceptable Here") if exc.status == 488 else (400, "Bad Request")
        self._log("offer_refused", code=code)
        if isinstance(event, CCEventUpdate):
            self.uaA.recvEvent(CCEventFail((code, reason), rtime=event.rtime))
        else:
            self._fail_both(code, reason)

    # --- INFO and the agent id --------------------------------------------------------
    def _info_may_cross(self, event: Any) -> bool:
        """Second check of an INFO the UA let through (its headers passed there)."""
        body = event.getData()
        if body is None:
            return False
        content = body.content if isinstance(body.content, str) else str(body.content)
        ctype = str(body.mtype) if body.mtype is not None else ""
        return relay_verdict(ctype, body_bytes(content), self.info_allowlist) is None

    def _agent_answer(self, resp: Any) -> None:
        """A 2xx from the PBX to an INVITE of the agent leg: bind the call to the agent it
        names in `[pbx] agent_id_header`; an answer without it binds the agent leg's
        Request-URI user (`agent_id_request_uri`), once.  Nothing the caller sent counts."""
        pbx = self.ctx.config.pbx
        named = agent_id_in(resp, pbx.agent_id_header) if pbx.agent_id_header else None
        if named == "":
            log.warning("agent id refused", call=self.id, reason="unusable_header")
            return
        agent = named
        if agent is None:
            if self.agent_bound or not pbx.agent_id_request_uri:
                return
            agent = self._agent_leg_uri_user()
        if self.id is not None and agent:
            self.agent_bound = True
            self.ctx.registry.update_call(self.id, agent_id=agent)
            self._log("agent", source="answer" if named else "request_uri")

    def _agent_leg_uri_user(self) -> str:
        target = getattr(self.uaO, "rTarget", None)
        user = getattr(target, "username", None) if target is not None else None
        return usable_agent_id(str(user)) if user else usable_agent_id(self.agent_uri_user)

    # --- digits ---------------------------------------------------------------------
    def _info_digit(self, digit: str) -> None:
        if self.media is not None:
            self.ctx.engine.external_digit(self.media, digit, "info")

    def _info_lost(self, count: int) -> None:
        """Keys of the caller's INFO dropped by the rate limit: the capture must know."""
        if self.media is not None:
            self.ctx.engine.lost_digits(self.media, count, "info")

    def _info_bucket(self) -> InfoBucket:
        sip = self.ctx.config.sip
        return InfoBucket(sip.info_rate, sip.info_burst)

    # --- lifecycle callbacks ----------------------------------------------------------
    def _a_conn(self, ua: Any, rtime: Any, origin: Any) -> None:
        if self.id is not None:
            self.ctx.registry.update_call(self.id, state="connected")
        if not self.counted_active:
            self.counted_active = True
            metrics.ACTIVE_CALLS.inc()
        self._log("connected")

    def _o_conn(self, ua: Any, rtime: Any, origin: Any) -> None:
        pass

    def _a_disc(self, ua: Any, rtime: Any, origin: Any, result: int = 0) -> None:
        self._end(f"{origin or 'caller'}")

    def _o_disc(self, ua: Any, rtime: Any, origin: Any, result: int = 0) -> None:
        self._end(f"{origin or 'agent'}")

    def _end(self, reason: str) -> None:
        if self.ended:
            return
        self.ended = True
        if self.media is not None:
            self.ctx.engine.close_call(self.media)  # the media plane wipes its keys
        self.sdes_caller.wipe()
        self.sdes_agent.wipe()
        if self.counted_active:
            metrics.ACTIVE_CALLS.dec()
        if self.id is not None:
            self.ctx.registry.end_call(self.id, reason=reason)
            self.ctx.calls.pop(self.id, None)
        self._log("ended", reason=reason)
        self.ctx.call_ended()

    def _dead(self, ua: Any) -> None:
        if not self.ended:
            self._end("dead")

    def disconnect(self, reason: str = "shutdown") -> None:
        """Hang up both legs (drain grace expired, RTP timeout)."""
        self._log("disconnect", reason=reason)
        # the reason as the events' origin: the disconnect callbacks end the call with it
        self.uaA.disconnect(origin=reason)
        if self.uaO is not None:
            self.uaO.disconnect(origin=reason)
        self._end(reason)

    def _fail_both(self, code: int, reason: str) -> None:
        self.uaA.recvEvent(CCEventFail((code, reason)))
        if self.uaO is not None:
            self.uaO.recvEvent(CCEventDisconnect())
        self._end("failed")

    def _log(self, what: str, **kw: Any) -> None:
        log.info(f"call.{what}", call=self.id, trunk_call_id=self.trunk_call_id, **kw)


def usable_agent_id(value: str) -> str:
    """An agent id as the desktop's `sub` could be: 1-128 printable ASCII characters
    without spaces, else ''."""
    value = value.strip()
    ok = 0 < len(value) <= 128 and value.isascii() and value.isprintable() and " " not in value
    return value if ok else ""


def agent_id_in(resp: Any, header: str) -> str | None:
    """The agent an answer names: None when the header is absent, '' when it is there
    but unusable (empty, repeated with different values, malformed)."""
    try:
        values = {str(h.getBody()).strip() for h in resp.getHFs(header.lower())}
    except Exception:
        return ""
    if not values:
        return None
    return usable_agent_id(values.pop()) if len(values) == 1 else ""
