"""``PaymentSession``: one payment on one call, from keyed digits to PSP hand-off.

It wraps a ``CaptureSession``; when every field is complete and valid it has a
token issued, and ``hand_off(gateway)`` sends the card to the PSP. Everything
it tells subscribers is a JSON-safe dict without card data. Clear digits live
only in its ``SensitiveDigits`` buffers and are wiped on approval, decline,
cancel, timeout and ``close()``; the CVV is never given to the vault. A session
whose card will not be handed off (no amount, or no gateway: ``release_card()``)
is wiped as soon as its token is issued.

Each issued token starts one payment attempt with its own random Idempotency-Key:
retries of a failed hand-off reuse it (the PSP can tell a retry from a new
payment); a new session, or a re-keyed card, gets a new one.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import structlog

from tokenizer import capture as cap
from tokenizer.capture import CaptureSession, CaptureSettings
from tokenizer.clock import Clock, SystemClock
from tokenizer.display import mask_token_display
from tokenizer.fields import FieldSpec
from tokenizer.gateway import APPROVED, DECLINED, ChargeRequest, PaymentGateway, failure_result
from tokenizer.sensitive import SensitiveDigits
from tokenizer.token_service import TokenService
from tokenizer.tokens import IssuedToken

log = structlog.get_logger(__name__)

# Session states beyond the capture's own ("collecting", "cancelled", "timed_out", "failed").
TOKENISED = "tokenised"
TOKEN_FAILED = "token_failed"
HANDING_OFF = "handing_off"
HANDOFF_FAILED = "handoff_failed"
HANDED_OFF = "handed_off"
DECLINED_STATE = "declined"
EXPIRED = "expired"
FINAL_STATES = (HANDED_OFF, DECLINED_STATE, EXPIRED, cap.CANCELLED, cap.TIMED_OUT, cap.FAILED)


class HandOffNotReady(Exception):
    """hand_off() called while the session has no token, or is already handing off."""


class PaymentSession:
    def __init__(
        self,
        *,
        amount_minor: int,
        currency: str,
        reference: str,
        fields: Sequence[FieldSpec],
        token_service: TokenService,
        settings: CaptureSettings | None = None,
        hold_timeout_s: float = 300.0,
        clock: Clock | None = None,
        session_id: str | None = None,
    ) -> None:
        kinds = [f.kind for f in fields]
        if "pan" not in kinds or "expiry" not in kinds:
            raise ValueError("a payment session needs a pan and an expiry field")
        if amount_minor < 0:
            raise ValueError("amount must not be negative")
        self.id = session_id or uuid.uuid4().hex
        self.amount_minor = amount_minor
        self.currency = currency
        self.reference = reference
        self.clock = clock or SystemClock()
        self.hold_timeout_s = hold_timeout_s
        self._tokens = token_service
        self._lock = threading.RLock()
        self._subscribers: list[Callable[[dict[str, Any]], None]] = []
        self._state: str | None = None
        self._issued: IssuedToken | None = None
        self._handoff: dict[str, Any] | None = None
        self._tokenised_at = 0.0
        self._cancel_requested = False
        self._released = False
        self._final_fields: list[dict[str, Any]] | None = None
        self._attempt_key: str | None = None
        self.capture = CaptureSession(
            fields, settings=settings, clock=self.clock, emit=self._on_capture_event
        )

    def __repr__(self) -> str:
        return f"PaymentSession(id={self.id!r}, state={self.state!r})"

    # --- subscribers -----------------------------------------------------
    def subscribe(self, callback: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
        """Call ``callback(event)`` for every public event; returns an unsubscribe function."""
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    def _publish(self, event: dict[str, Any]) -> None:
        event = {"session": self.id, **event}
        for callback in list(self._subscribers):
            try:
                callback(event)
            except Exception as exc:  # a broken subscriber must not break the payment
                log.warning("session_subscriber_failed", error_type=type(exc).__name__)

    # --- inputs ----------------------------------------------------------
    def digit(self, key: str) -> None:
        with self._lock:
            self.capture.digit(key)

    def poll(self) -> None:
        """Apply field, session and hold timeouts."""
        with self._lock:
            self.capture.poll()
            held = self._state in (TOKENISED, HANDOFF_FAILED, TOKEN_FAILED) and not self._released
            if held and self.clock.monotonic() - self._tokenised_at >= self.hold_timeout_s:
                self._end(EXPIRED)

    def restart_field(self, name: str) -> None:
        with self._lock:
            if self.state in FINAL_STATES and self.state != cap.FAILED:
                return
            if self._state == HANDING_OFF or self._released:
                return
            self._state = None
            self._issued = None
            self._attempt_key = None
            self.capture.restart_field(name)

    def cancel(self) -> None:
        with self._lock:
            if self._state in FINAL_STATES:
                return
            if self._state == HANDING_OFF:  # the PSP has the card now; cancel if it fails
                self._cancel_requested = True
            elif self._state is None:
                self.capture.cancel()
            else:
                self._end(cap.CANCELLED)

    def close(self) -> None:
        """End of call: wipe whatever is still held (after the PSP answers, if it is asked)."""
        with self._lock:
            if self.state not in FINAL_STATES:
                self.cancel()
            if self._state != HANDING_OFF:
                self.capture.wipe()

    def release_card(self) -> None:
        """The token is all that is needed from now on (no hand-off follows): wipe the
        card now. The status keeps its masked fields and token; ``hand_off`` is refused."""
        with self._lock:
            if self._state != TOKENISED or self._released:
                return
            self._final_fields = self.capture.status()["fields"]
            self._released = True
            self.capture.wipe()

    # --- views -----------------------------------------------------------
    @property
    def state(self) -> str:
        return self._state or self.capture.state

    @property
    def token(self) -> str | None:
        return self._issued.token if self._issued else None

    def status(self) -> dict[str, Any]:
        with self._lock:
            capture = self.capture.status()
            return {
                "session": self.id,
                "state": self.state,
                "amount": self.amount_minor,
                "currency": self.currency,
                "reference": self.reference,
                "current_field": capture["current_field"],
                "fields": self._final_fields if self._released else capture["fields"],
                "token": self._token_event() if self._issued else None,
                "handoff": dict(self._handoff) if self._handoff else None,
            }

    # --- token -----------------------------------------------------------
    def _on_capture_event(self, event: dict[str, Any]) -> None:
        self._publish(event)
        if event["event"] == cap.COMPLETE:
            self.issue_token()

    def _token_event(self) -> dict[str, Any]:
        t = self._issued
        assert t is not None
        return {
            "event": "token",
            "token": t.token,
            "kind": t.kind,
            "brand": t.brand,
            "display": mask_token_display("", t.last4, t.pan_length),
            "reused": t.reused,
        }

    def issue_token(self) -> None:
        """Issue the token for the captured card (called on completion; retry after failure)."""
        with self._lock:
            if self.capture.state != cap.COMPLETE or self._state not in (None, TOKEN_FAILED):
                return
            try:
                pan, expiry = self._card_part("pan"), self._card_part("expiry")
                self._issued = self._tokens.issue(pan, expiry, self.capture.brand or "unknown")
            except Exception as exc:
                log.error("token_issue_failed", error_type=type(exc).__name__)
                self._state = TOKEN_FAILED
                self._tokenised_at = self.clock.monotonic()
                self._publish({"event": "error", "reason": "token_issue_failed", "retryable": True})
                return
            self._state = TOKENISED
            self._tokenised_at = self.clock.monotonic()
            self._attempt_key = uuid.uuid4().hex  # one payment attempt per issued token
            if self.amount_minor == 0:
                self.release_card()  # nothing to charge: tokenise only, keep no card
            self._publish(self._token_event())

    # --- hand-off --------------------------------------------------------
    def _card_part(self, kind: str) -> SensitiveDigits:
        value = self.capture.value_of_kind(kind)
        if value is None:  # unreachable: __init__ refuses fields without a pan and an expiry
            raise RuntimeError(f"the session has no {kind} field")
        return value

    def _request(self) -> ChargeRequest:
        cvv = self.capture.value_of_kind("cvv") or SensitiveDigits()
        return ChargeRequest(
            pan=self._card_part("pan"),
            expiry=self._card_part("expiry"),
            cvv=cvv,
            amount_minor=self.amount_minor,
            currency=self.currency,
            reference=self.reference,
            token=self.token or "",
            idempotency_key=self._attempt_key or uuid.uuid4().hex,
        )

    async def hand_off(self, gateway: PaymentGateway) -> dict[str, Any]:
        """Send the card to the PSP; returns (and publishes) the ``handoff`` event."""
        with self._lock:
            self.poll()
            if self._released:
                raise HandOffNotReady("the card was released at its token: nothing to hand off")
            if self._state not in (TOKENISED, HANDOFF_FAILED):
                raise HandOffNotReady(f"session is {self.state}, not ready to hand off")
            self._state = HANDING_OFF
            request = self._request()
        try:
            result = await gateway.charge(request)
        except Exception as exc:  # an adapter bug must not lose the card either
            log.error("gateway_raised", error_type=type(exc).__name__)
            result = failure_result("gateway_error")
        with self._lock:
            event = {
                "event": "handoff",
                "ok": result.ok,
                "status": result.status,
                "retryable": result.retryable,
                "reason": result.reason,
                "authorisation": result.authorisation,
                "token": self.token,
            }
            self._handoff = event
            if result.status == APPROVED:
                try:
                    assert self.token is not None  # approved: the card was tokenised first
                    self._tokens.record_psp_result(
                        self.token, result.psp_token, result.authorisation
                    )
                except Exception as exc:
                    log.error("psp_result_not_stored", error_type=type(exc).__name__)
                    event["reason"] = "psp_result_not_stored"
                self._end(HANDED_OFF, publish=False)
            elif result.status == DECLINED:
                self._end(DECLINED_STATE, publish=False)
            else:
                self._state = HANDOFF_FAILED
            if self._cancel_requested and self._state == HANDOFF_FAILED:
                self._end(cap.CANCELLED, publish=False)
            log.info(
                "handoff", status=result.status, reason=result.reason, retryable=result.retryable
            )
            self._publish(event)
            return dict(event)

    def _end(self, state: str, publish: bool = True) -> None:
        self._state = state
        self.capture.wipe()
        if publish:
            self._publish({"event": state})
