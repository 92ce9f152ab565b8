"""The call registry: every live call, its legs, agent, masking policy and payment session.

Owned by the SIP side, read and driven by the agent-desktop API from another
thread and fed digits by the media thread, so every public method takes the
registry lock.  Callbacks (subscribers, media arm/disarm hooks) are invoked
outside the lock, and so is every call into a payment session: a session
publishes its events (which take the registry lock) while holding its own lock,
so asking a session anything under the registry lock could deadlock the media
thread against an API reader.  Digits are handed to the call's payment session and never
stored, logged or put in an event here.

Masking never stops silently: under the `capture` policy a call is armed when a capture
starts and stays armed, whatever becomes of the capture (cancelled, failed, timed out,
expired, handed off), until the agent ends the payment phase (`end_payment_phase`) or
the call ends.  Card data lifetime: a payment session is closed (its digits wiped)
whenever another replaces it, when its token is issued and no hand-off follows, and
when the call ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeGuard

import structlog

from masker.calls.ids import log_safe_hex
from masker.errors import CallEnded, CaptureConflict
from masker.runtime import metrics

if TYPE_CHECKING:
    from masker.calls.handoff import HandoffWorker

log = structlog.get_logger()

Event = dict[str, Any]


class CallPaymentSession(Protocol):
    """A call's payment session as the registry drives it (tokenizer.PaymentSession
    fits; tests use stand-ins).  Also used when present, so not required here:
    `close()` (else `cancel()` ends it), `subscribe(callback) -> unsubscribe` (its
    public events), and for the gateway hand-off `amount_minor`, `token`,
    `release_card()` (or `capture.wipe()`)."""

    def digit(self, key: str, /) -> None: ...

    def status(self) -> Event: ...

    def poll(self) -> None: ...

    def restart_field(self, name: str, /) -> None: ...

    def cancel(self) -> None: ...


class SessionFactory(Protocol):
    """Makes the payment session of a capture (`Registry.start_capture`)."""

    def __call__(
        self, *, call_id: str, amount: str, currency: str, reference: str, fields: tuple[str, ...]
    ) -> CallPaymentSession: ...


#: How long an ended call stays visible to list_calls()/get_call().
ENDED_RETENTION_S = 60.0


@dataclass
class CallRecord:
    """Internal mutable state of one call (guarded by the registry lock)."""

    id: str
    trunk_call_id: str
    agent_call_id: str = ""
    state: str = "setup"
    agent_id: str = ""
    policy: str = "always"
    created_at: float = field(default_factory=time.time)
    connected_at: float | None = None
    ended_at: float | None = None
    end_reason: str = ""
    session: CallPaymentSession | None = None
    session_unsubscribe: Callable[[], None] | None = None
    subscribers: list[Callable[[Event], None]] = field(default_factory=list)
    arm_hook: Callable[[bool], None] | None = None
    # the caller's keypad is masked towards the agent (always true under "always")
    armed: bool = False
    digits_dropped: int = 0
    # set when a capture ended without a gateway: the session is finished and detached
    handoff_note: Event | None = None

    def snapshot(self) -> Event:
        """Plain fields, read under the registry lock; the caller fills in `capture`
        from the session outside it."""
        return {
            "id": self.id,
            "state": self.state,
            "agent_id": self.agent_id,
            "policy": self.policy,
            "armed": self.armed,
            "trunk_call_id": self.trunk_call_id,
            "agent_call_id": self.agent_call_id,
            "created_at": self.created_at,
            "connected_at": self.connected_at,
            "ended_at": self.ended_at,
            "end_reason": self.end_reason,
            "capture": None,
        }


def capture_status(session: CallPaymentSession | None, handoff_note: Event | None) -> Event | None:
    """A session's status for the call views (never called under the registry lock)."""
    if session is None:
        return None
    try:
        capture = session.status()
    except Exception:  # a facade bug must not break listing calls
        capture = {"state": "unknown"}
    if handoff_note is not None and not capture.get("handoff"):
        capture = {**capture, "handoff": dict(handoff_note)}
    return capture


class Registry:
    """Thread-safe map of calls; the API's `CallRegistry` protocol is implemented here."""

    def __init__(
        self,
        session_factory: SessionFactory | None = None,
        auto_capture: bool = True,
        auto_currency: str = "GBP",
        clock: Callable[[], float] = time.time,
        handoff: HandoffWorker | None = None,
    ) -> None:
        """`handoff` (a masker.calls.handoff.HandoffWorker) sends the cards of captures started
        with an amount to the payment gateway once they are tokenised; with a worker
        that has no gateway such a capture ends at its token (status `not_configured`);
        None leaves hand-off to whoever made the session."""
        self._lock = threading.RLock()
        # serialises starting captures (the running-check and the swap must be atomic);
        # never taken by a session callback, so it may be held while asking a session
        self._start_lock = threading.Lock()
        self._calls: dict[str, CallRecord] = {}
        self._session_factory = session_factory
        self._auto_capture = auto_capture
        self._auto_currency = auto_currency
        self._clock = clock
        self._handoff = handoff

    # --- SIP side -------------------------------------------------------------------
    def add_call(self, trunk_call_id: str, policy: str = "always") -> str:
        """Register a new call and return its registry id (random, safe to show)."""
        call_id = log_safe_hex(8)
        with self._lock:
            self._purge()
            self._calls[call_id] = CallRecord(
                id=call_id,
                trunk_call_id=trunk_call_id,
                policy=policy,
                created_at=self._clock(),
                armed=policy != "capture",
            )
        return call_id

    def set_arm_hook(self, call_id: str, hook: Callable[[bool], None]) -> None:
        """The media plane's arm(True)/disarm(False) for the `capture` policy (the
        media plane starts such a call disarmed)."""
        with self._lock:
            self._get(call_id).arm_hook = hook

    def update_call(self, call_id: str, **changes: Any) -> None:
        """Change state/agent/legs; subscribers get a `call` event when the state changes."""
        with self._lock:
            rec = self._calls.get(call_id)
            if rec is None:
                return
            old_state = rec.state
            for key, value in changes.items():
                if key not in ("state", "agent_id", "agent_call_id"):
                    raise ValueError(f"cannot update {key}")
                setattr(rec, key, value)
            if rec.state == "connected" and rec.connected_at is None:
                rec.connected_at = self._clock()
            event = {"type": "call", "call_id": call_id, "state": rec.state}
            subs = list(rec.subscribers) if rec.state != old_state else []
        self._emit(subs, event)

    def end_call(self, call_id: str, reason: str = "hangup") -> None:
        """Mark the call ended; a running capture is closed (its digits wiped)."""
        with self._lock:
            rec = self._calls.get(call_id)
            if rec is None or rec.state == "ended":
                return
            rec.state = "ended"
            rec.ended_at = self._clock()
            rec.end_reason = reason
            session = rec.session
            subs = list(rec.subscribers)
        if session is not None:
            self._close_session(session)
        self._emit(subs, {"type": "call", "call_id": call_id, "state": "ended", "reason": reason})

    def poll(self) -> None:
        """Drive the payment sessions' field/session/hold timeouts (call about once a second)."""
        with self._lock:
            sessions = [
                r.session
                for r in self._calls.values()
                if r.session is not None and r.handoff_note is None
            ]
        for session in sessions:
            try:
                session.poll()
            except Exception:
                log.error("payment session poll failed")

    # --- media side -----------------------------------------------------------------
    def on_digit(self, call_id: str, digit: str, source: str) -> bool:
        """A key press from the caller (already deduplicated); True if a session took it."""
        metrics.DIGITS_MASKED.labels(source).inc()
        with self._lock:
            rec = self._calls.get(call_id)
            if rec is None or rec.state == "ended":
                return False
            session = rec.session
            # only the call's first key press starts a capture on its own; keys after
            # a finished capture (a stray '#') must not replace its result
            auto = (
                rec.session is None
                and rec.policy == "always"
                and self._auto_capture
                and self._session_factory is not None
            )
        session = session if _running(session) else None
        if auto:
            try:
                self.start_capture(call_id, "", self._auto_currency, "auto", ())
            except (CaptureConflict, CallEnded):
                pass
            except Exception:
                log.exception("auto capture failed to start", call=call_id)
            with self._lock:
                session = rec.session
            session = session if _running(session) else None
        if session is None:
            with self._lock:
                rec.digits_dropped += 1
            return False
        try:
            session.digit(digit)
        except Exception:  # never let the exception text (it may name the digit) out
            log.error("payment session rejected a digit", call=call_id)
            return False
        return True

    # --- API side (masker.api.call_registry.CallRegistry) ----------------------------------
    def list_calls(self) -> list[Event]:
        with self._lock:
            self._purge()
            records = list(self._calls.values())
        return [self._view(rec) for rec in records]

    def get_call(self, call_id: str) -> Event:
        with self._lock:
            rec = self._get(call_id)
        return self._view(rec)

    def _view(self, rec: CallRecord) -> Event:
        with self._lock:
            view, session, note = rec.snapshot(), rec.session, rec.handoff_note
        view["capture"] = capture_status(session, note)
        return view

    def start_capture(
        self, call_id: str, amount: str, currency: str, reference: str, fields: Sequence[str]
    ) -> Event:
        if self._session_factory is None:
            raise CaptureConflict("no tokenizer configured")
        with self._start_lock:
            with self._lock:
                rec = self._live(call_id)
                previous = rec.session
            if _running(previous):
                raise CaptureConflict("a capture is already running")
            session = self._session_factory(
                call_id=call_id,
                amount=amount,
                currency=currency,
                reference=reference,
                fields=tuple(fields),
            )
            with self._lock:
                ended = rec.state == "ended"
                if not ended:
                    old_unsub, rec.session_unsubscribe = rec.session_unsubscribe, None
                    rec.handoff_note = None
                    previous, rec.session = rec.session, session
                    arming = rec.policy == "capture" and not rec.armed
                    rec.armed = True
                    hook = rec.arm_hook if arming else None
            if ended:
                self._close_session(session)
                raise CallEnded("call has ended")
            if hook is not None:
                hook(True)  # armed before the first digit can reach the new session
            if old_unsub is not None:
                old_unsub()  # no event of the replaced session reaches the desktop now
            if previous is not None:
                self._close_session(previous)  # replaced: whatever it still holds is wiped
        metrics.CAPTURES_STARTED.inc()
        unsub = None
        if hasattr(session, "subscribe"):
            unsub = session.subscribe(lambda ev, cid=call_id: self._session_event(cid, ev))
        with self._lock:
            rec.session_unsubscribe = unsub if callable(unsub) else None
        if arming:
            self._emit(self._subs(call_id), {"type": "masking", "call_id": call_id, "armed": True})
        log.info("capture started", call=call_id, auto=reference == "auto")
        status = session.status()
        self._emit(self._subs(call_id), {"type": "capture", "call_id": call_id, "status": status})
        return status

    def restart_field(self, call_id: str, field: str) -> Event:
        session = self._running_session(call_id)
        session.restart_field(field)
        return session.status()

    def cancel_capture(self, call_id: str) -> Event:
        """Cancel the running capture (its digits are wiped); the call stays armed: the
        caller may still be keying, and the agent may start another capture."""
        session = self._running_session(call_id)
        session.cancel()
        return session.status()

    def end_payment_phase(self, call_id: str, by: str = "") -> Event:
        """The agent ends the payment phase: a `capture`-policy call is disarmed (the
        caller's keypad is heard again). Refused while a capture is collecting digits and
        under the `always` policy; audited in the log (call, agent; no card data)."""
        with self._start_lock:  # no capture may start (and arm) half-way through
            with self._lock:
                rec = self._live(call_id)
                if rec.policy != "capture":
                    raise CaptureConflict("the masking policy is 'always': the call stays armed")
                session = rec.session
            if _collecting(session):
                raise CaptureConflict("a capture is collecting digits: cancel it first")
            with self._lock:
                was_armed, rec.armed = rec.armed, False
                hook = rec.arm_hook if was_armed else None
            if hook is not None:
                hook(False)
        log.info("payment phase ended", call=call_id, agent=by, was_armed=was_armed)
        if was_armed:
            self._emit(self._subs(call_id), {"type": "masking", "call_id": call_id, "armed": False})
        return self.get_call(call_id)

    def retry_handoff(self, call_id: str) -> Event:
        """Send the held card to the gateway again after a retryable failure."""
        with self._lock:
            session = self._live(call_id).session
        if self._handoff is None or not self._handoff.configured:
            raise CaptureConflict("no payment gateway is configured")
        if session is None or session.status().get("state") != "handoff_failed":
            raise CaptureConflict("no failed hand-off to retry")
        log.info("handoff retry", call=call_id)
        self._handoff.submit(call_id, session)
        return session.status()

    def subscribe(self, call_id: str, callback: Callable[[Event], None]) -> Callable[[], None]:
        with self._lock:
            rec = self._get(call_id)
            rec.subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in rec.subscribers:
                    rec.subscribers.remove(callback)

        return unsubscribe

    # --- internals --------------------------------------------------------------------
    def _get(self, call_id: str) -> CallRecord:
        rec = self._calls.get(call_id)
        if rec is None:
            raise LookupError("unknown call")
        return rec

    def _subs(self, call_id: str) -> list[Callable[[Event], None]]:
        with self._lock:
            rec = self._calls.get(call_id)
            return list(rec.subscribers) if rec else []

    def _live(self, call_id: str) -> CallRecord:
        """The record of a call that has not ended (the caller holds `_lock`)."""
        rec = self._get(call_id)
        if rec.state == "ended":
            raise CallEnded("call has ended")
        return rec

    def _running_session(self, call_id: str) -> CallPaymentSession:
        with self._lock:
            session = self._live(call_id).session
        if not _running(session):
            raise CaptureConflict("no capture is running")
        return session

    def _close_session(self, session: CallPaymentSession) -> None:
        try:
            session.close() if hasattr(session, "close") else session.cancel()
        except Exception:
            log.error("payment session close failed")

    def _session_event(self, call_id: str, event: object) -> None:
        subs = self._subs(call_id)
        self._emit(subs, {"type": "capture", "call_id": call_id, "event": event})
        kind = event.get("event") if isinstance(event, dict) else None
        log.info("capture.event", call=call_id, kind=kind)
        if kind == "token":
            metrics.CAPTURES_COMPLETED.inc()
        elif kind in _FAILURES:
            metrics.CAPTURES_FAILED.labels(_FAILURES[kind]).inc()
        # a failed, timed-out or expired capture leaves the call armed: the caller's
        # next attempt must not be heard in clear (only end_payment_phase disarms)
        if kind == "token":
            self._hand_off(call_id)

    def _hand_off(self, call_id: str) -> None:
        """A capture with an amount has its token: the card goes to the gateway, or (none
        configured) the capture ends here with the card kept only as its vault token."""
        with self._lock:
            rec = self._calls.get(call_id)
            session = rec.session if rec is not None else None
        if (
            self._handoff is None
            or rec is None
            or session is None
            or not getattr(session, "amount_minor", 0)
        ):
            return  # no hand-off wired here; automatic captures (no amount) only tokenise
        if self._handoff.configured:
            self._handoff.submit(call_id, session)
            return
        from masker.calls.handoff import not_configured_event, result_label

        release = getattr(session, "release_card", None)
        if release is None:
            release = getattr(getattr(session, "capture", None), "wipe", None)
        if release is not None:
            release()  # PAN/expiry are in the vault; the CVV must go now
        note = not_configured_event(getattr(session, "token", None))
        with self._lock:
            rec.handoff_note = note
            unsub, rec.session_unsubscribe = rec.session_unsubscribe, None
        if unsub is not None:
            unsub()  # finished: no hold-timeout "expired" event may follow
        metrics.HANDOFF_RESULTS.labels(result_label(note)).inc()
        log.info("handoff result", call=call_id, result=result_label(note), status=note["status"])
        self._emit(self._subs(call_id), {"type": "capture", "call_id": call_id, "event": note})

    def _emit(self, subs: list[Callable[[Event], None]], event: Event) -> None:
        for cb in subs:
            try:
                cb(event)
            except Exception:
                log.error("registry subscriber failed", event_type=event.get("type"))

    def _purge(self) -> None:
        now = self._clock()
        for cid in [
            cid
            for cid, r in self._calls.items()
            if r.ended_at is not None and now - r.ended_at > ENDED_RETENTION_S
        ]:
            del self._calls[cid]


_FAILURES = {
    "cancelled": "cancelled",
    "timed_out": "timeout",
    "failed": "invalid",
    "expired": "expired",
}


def _running(session: CallPaymentSession | None) -> TypeGuard[CallPaymentSession]:
    """A session that still owns the call's capture (a second start would conflict)."""
    if session is None:
        return False
    try:
        state = session.status().get("state")
    except Exception:
        return True
    return state in ("collecting", "handing_off") or state is None


def _collecting(session: CallPaymentSession | None) -> bool:
    """A session the caller may still be keying digits into."""
    if session is None:
        return False
    try:
        state = session.status().get("state")
    except Exception:
        return True
    return state == "collecting" or state is None
