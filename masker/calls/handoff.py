"""Hands tokenised cards to the payment gateway, off the SIP and media threads.

A token is issued on the digit worker thread (masker/calls/digit_queue.py); the
hand-off is an HTTPS round trip that may take seconds, so it runs on this
worker's own asyncio loop.  Results are counted in `HANDOFF_RESULTS` and
published by the payment session itself (its `handoff` event).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Mapping
from concurrent.futures import Future
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from masker.errors import UserError
from masker.runtime import metrics
from masker.runtime.service_config import GatewayConfig

if TYPE_CHECKING:
    from tokenizer import PaymentGateway

log = structlog.get_logger()

NOT_CONFIGURED = "not_configured"


def build_gateway(cfg: GatewayConfig) -> PaymentGateway | None:
    """The tokeniser's HTTPS adapter for `[gateway]`, or None when no url is set."""
    if not cfg.url:
        return None
    from tokenizer import HttpsJsonGateway

    if cfg.ca_file and not Path(cfg.ca_file).is_file():
        raise UserError(f"[gateway] ca_file not found: {cfg.ca_file}")
    try:
        return HttpsJsonGateway(
            cfg.url, ca_file=cfg.ca_file or None, timeout_s=cfg.timeout_s, api_key=_credential(cfg)
        )
    except (ValueError, OSError) as exc:  # bad URL, unreadable CA bundle
        raise UserError(f"[gateway] {exc}") from None


def _credential(cfg: GatewayConfig) -> str | None:
    if cfg.api_key_file:
        try:
            return Path(cfg.api_key_file).read_text().strip() or None
        except OSError as exc:
            raise UserError(f"cannot read [gateway] api_key_file: {exc.strerror}") from None
    if cfg.api_key_env:
        value = os.environ.get(cfg.api_key_env)
        if not value:
            raise UserError(
                f"[gateway] api_key_env: environment variable {cfg.api_key_env} is empty"
            )
        return value
    return None


def result_label(event: Mapping[str, Any]) -> str:
    """The `HANDOFF_RESULTS` label of a session's `handoff` event (small fixed vocabulary)."""
    status = event.get("status")
    if status == "approved":
        return "ok"
    if status == "declined":
        return "declined"
    if status == NOT_CONFIGURED:
        return NOT_CONFIGURED
    return "timeout" if event.get("reason") == "timeout" else "error"


def not_configured_event(token: str | None) -> dict[str, Any]:
    """The public `handoff` event of a capture finished without a gateway."""
    return {
        "event": "handoff",
        "ok": False,
        "status": NOT_CONFIGURED,
        "retryable": False,
        "reason": "no_gateway",
        "authorisation": None,
        "token": token,
    }


class HandoffWorker:
    """`submit(call_id, session)` from any thread; the hand-off runs on the worker loop."""

    def __init__(self, gateway: Any | None) -> None:
        self.gateway = gateway
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="handoff", daemon=True)
        self._thread.start()

    @property
    def configured(self) -> bool:
        return self.gateway is not None

    def submit(self, call_id: str, session: Any) -> Future[dict[str, Any] | None]:
        """Start the hand-off of `session`'s card; the future holds the handoff event."""
        return asyncio.run_coroutine_threadsafe(self._hand_off(call_id, session), self._loop)

    async def _hand_off(self, call_id: str, session: Any) -> dict[str, Any] | None:
        from tokenizer import HandOffNotReady

        try:
            event: dict[str, Any] = await session.hand_off(self.gateway)
        except HandOffNotReady:  # a second retry raced the first, or the card expired
            log.info("handoff skipped", call=call_id, state=getattr(session, "state", None))
            return None
        except Exception as exc:  # never let the exception text out: it is not ours
            log.error("handoff failed", call=call_id, exc_type=type(exc).__name__)
            return None
        label = result_label(event)
        metrics.HANDOFF_RESULTS.labels(label).inc()
        log.info(
            "handoff result",
            call=call_id,
            result=label,
            status=event.get("status"),
            reason=event.get("reason"),
            retryable=event.get("retryable"),
        )
        return event

    def stop(self, timeout: float = 5.0) -> None:
        """Let running hand-offs finish (up to `timeout`), then end the loop."""
        if not self._thread.is_alive():
            return

        async def _drain() -> None:
            pending = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            if pending:
                await asyncio.wait(pending, timeout=timeout)

        try:
            asyncio.run_coroutine_threadsafe(_drain(), self._loop).result(timeout + 1)
        except Exception:
            log.warning("handoff worker did not drain in time")
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout)
