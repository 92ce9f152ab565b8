"""What the API needs from the service's call registry, and the errors it maps to 4xx.

The registry (masker/calls/registry.py) is thread-safe and owned by the SIP side;
the API calls it from its own event-loop thread.  Event callbacks passed to
`subscribe` may run on any thread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from masker.errors import CallEnded, CaptureConflict

Event = Mapping[str, Any]


class CallRegistry(Protocol):
    def list_calls(self) -> Sequence[Any]:
        """Every live (and recently ended) call, as mappings or dataclasses."""

    def get_call(self, call_id: str) -> Any:
        """One call; raises LookupError when unknown."""

    def start_capture(
        self, call_id: str, amount: str, currency: str, reference: str, fields: Sequence[str]
    ) -> Any:
        """Switch the call to capture mode; returns the capture status."""

    def restart_field(self, call_id: str, field: str) -> Any: ...

    def cancel_capture(self, call_id: str) -> Any: ...

    def retry_handoff(self, call_id: str) -> Any:
        """Hand the held card to the gateway again after a retryable failure."""

    def end_payment_phase(self, call_id: str, by: str) -> Any:
        """Disarm a `capture`-policy call (optional: 409 when absent); `by` is the agent id,
        for the audit log. Returns the call."""

    def subscribe(self, call_id: str, callback: Callable[[Event], None]) -> Callable[[], None]:
        """Deliver the call's public events to `callback`; returns an unsubscribe function."""


def error_for(exc: BaseException) -> tuple[int, str] | None:
    """The HTTP status and error code for a registry exception, None if it is a bug."""
    if isinstance(exc, CallEnded):
        return 409, "call_ended"
    if isinstance(exc, CaptureConflict):
        return 409, "capture_conflict"
    if isinstance(exc, LookupError):
        return 404, "unknown_call"
    if isinstance(exc, ValueError):
        return 400, "invalid_request"
    return None
