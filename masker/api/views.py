"""Public projections: the only shapes of call and capture data a desktop ever receives.

Everything sent to a desktop passes through here.  The tokeniser already emits
only masked data; this is the second lock on the door: keys that could carry
clear card data are dropped, a card-field key may only hold a nested status
(never a value), and any string holding a Luhn-valid run of 12 to 19 digits is
dropped, so a PAN cannot reach an agent even if an upstream event carried one.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

CARD_FIELDS = frozenset({"pan", "expiry", "cvv", "cvc", "postcode", "card", "card_number"})
SECRET_KEYS = frozenset(
    {
        "digits",
        "digit",
        "value",
        "values",
        "clear",
        "raw",
        "number",
        "buffer",
        "secret",
        "key",
        "trunk_call_id",
        "agent_call_id",
    }
)
_DIGIT_RUN = re.compile(r"\d+")
_SEPARATORS = re.compile(r"[ \-.]")
_MAX_DEPTH = 6


def _luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = ord(ch) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def looks_like_pan(text: str) -> bool:
    """True if `text` holds a Luhn-valid run of 12-19 digits (spaces, dots, dashes ignored)."""
    runs = _DIGIT_RUN.findall(_SEPARATORS.sub("", text))
    return any(12 <= len(run) <= 19 and _luhn_ok(run) for run in runs)


def as_mapping(obj: Any) -> Mapping[str, Any]:
    """A registry record as a mapping, whether it is a dict, a dataclass or an object."""
    if obj is None:
        return {}
    if isinstance(obj, Mapping):
        return obj
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if callable(getattr(obj, "status", None)):
        return as_mapping(obj.status())
    return {k: v for k, v in vars(obj).items() if not k.startswith("_")}


def public_value(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy of `value` without secret keys, card values or PAN-like strings."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, str):
        return None if looks_like_pan(value) else value
    if depth >= _MAX_DEPTH:
        return None
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            key = str(key)
            if key.lower() in SECRET_KEYS:
                continue
            if key.lower() in CARD_FIELDS and not isinstance(item, Mapping):
                continue  # a card field may describe its status, never carry its value
            out[key] = public_value(item, depth + 1)
        return out
    if isinstance(value, list | tuple):
        return [public_value(v, depth + 1) for v in value]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return public_value(as_mapping(value), depth + 1)
    return None


def public_capture(status: Any) -> dict[str, Any] | None:
    """The capture status a desktop may see, or None when no capture ran."""
    if status is None:
        return None
    cleaned = public_value(as_mapping(status))
    return cleaned if isinstance(cleaned, dict) else None


def _number(value: Any) -> float | None:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else None


def _text(value: Any) -> str | None:
    return None if value in (None, "") else public_value(str(value))


def public_call(call: Any) -> dict[str, Any]:
    """The call summary a desktop may see (registry snapshot -> API `Call`)."""
    raw = as_mapping(call)
    return {
        "id": str(raw.get("id", raw.get("call_id", ""))),
        "agent": _text(raw.get("agent", raw.get("agent_id"))),
        "state": _text(raw.get("state")) or "unknown",
        "caller": _text(raw.get("caller")),
        "started": _number(raw.get("started", raw.get("connected_at", raw.get("created_at")))),
        "ended": _number(raw.get("ended", raw.get("ended_at"))),
        "end_reason": _text(raw.get("end_reason")),
        "policy": raw["policy"] if raw.get("policy") in ("always", "capture") else None,
        "armed": raw["armed"] if isinstance(raw.get("armed"), bool) else None,
        "capture": public_capture(raw.get("capture")),
    }


def public_event(event: Any) -> dict[str, Any] | None:
    """A feed event a desktop may see, or None if nothing public is left of it.

    The registry wraps tokeniser events as `{"type": "capture", "event": {...}}`
    and capture snapshots as `{"type": "capture", "status": {...}}`; the desktop
    gets the tokeniser's own event with its kind as `type` (field_started,
    progress, complete, token, handoff, cancelled, ...) or a `capture` snapshot.
    """
    raw = dict(as_mapping(event))
    inner = raw.get("event")
    if isinstance(inner, Mapping):
        raw = dict(inner)
    elif raw.get("type") == "capture" and "status" in raw:
        return {"type": "capture", "capture": public_capture(raw["status"])}
    if isinstance(raw.get("event"), str):  # the tokeniser names its event kinds "event"
        raw = {"type": raw.pop("event"), **raw}
    cleaned = public_value(raw)
    if not isinstance(cleaned, dict) or not isinstance(cleaned.get("type"), str):
        return None
    cleaned.pop("call_id", None)
    return cleaned
