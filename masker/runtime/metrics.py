"""Prometheus metric objects of the masking service, served at /metrics.

Defined once here so the SIP, media and capture code can increment them and
the API can expose them.  Labels are small fixed vocabularies (digit source,
capture failure reason code, hand-off result): never a digit, a card value, a
token or a Call-ID, so no card data can ever reach a label or a value.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)
"""The service's own registry (not the library's global one) so that tests and
embedders get exactly the service's metrics and nothing imported by accident."""

ACTIVE_CALLS = Gauge(
    "masker_active_calls",
    "Calls currently bridged by the B2BUA.",
    registry=REGISTRY,
)
DIGITS_MASKED = Counter(
    "masker_digits_masked",
    "Keypad digits masked towards the agent, by how they arrived.",
    ["source"],  # inband | rfc4733 | info (dsp.events.SOURCES)
    registry=REGISTRY,
)
CAPTURES_STARTED = Counter(
    "masker_captures_started",
    "Payment capture sessions started.",
    registry=REGISTRY,
)
CAPTURES_COMPLETED = Counter(
    "masker_captures_completed",
    "Payment capture sessions that ended with a token.",
    registry=REGISTRY,
)
CAPTURES_FAILED = Counter(
    "masker_captures_failed",
    "Payment capture sessions that ended without a token, by reason code.",
    ["reason"],  # e.g. cancelled | timeout | invalid | call_ended
    registry=REGISTRY,
)
HANDOFF_RESULTS = Counter(
    "masker_handoff_results",
    "Payment-gateway hand-off outcomes.",
    ["result"],  # e.g. ok | declined | error | timeout
    registry=REGISTRY,
)
MEDIA_LATE_PACKETS = Counter(
    "masker_media_late_packets",
    "RTP packets forwarded later than their tick (media plane overrun).",
    registry=REGISTRY,
)
API_AUTH_FAILURES = Counter(
    "masker_api_auth_failures",
    "Rejected API authentications (the presented credential is never recorded).",
    registry=REGISTRY,
)
GC_PAUSES = Histogram(
    "masker_gc_pause_seconds",
    "Cyclic garbage collections, by generation: each holds the GIL, so every call's "
    "media waits as long as one lasts.",
    ["generation"],  # 0 | 1 | 2
    buckets=(0.001, 0.005, 0.010, 0.020, 0.040, 0.080, 0.160),
    registry=REGISTRY,
)
