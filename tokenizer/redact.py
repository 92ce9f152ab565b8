"""Redaction of card data from log events (a structlog processor).

Two rules, applied to every value of the event, nested ones included:
- any value under a key that names card data (pan, cvv, card, expiry, ...) is
  replaced whatever it holds;
- any run of 12 to 19 digits, possibly split by single spaces or dashes, is
  replaced when it (or any 12-19 digit stretch inside it) passes Luhn.
Redacting too much is safe; the processor never raises.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any

from tokenizer.luhn import luhn_valid

REDACTED = "[REDACTED]"
SENSITIVE_KEYS = frozenset(
    {
        "pan",
        "card",
        "card_number",
        "cardnumber",
        "card_no",
        "account_number",
        "cvv",
        "cvv2",
        "cvc",
        "cvc2",
        "cid",
        "csc",
        "security_code",
        "expiry",
        "exp",
        "expiration",
        "exp_date",
        "expiry_date",
        "exp_month",
        "exp_year",
        "track",
        "track1",
        "track2",
        "pin",
        "digit",
        "digits",
        "keyed",
        "dtmf_digits",
    }
)
_RUN = re.compile(r"(?<![0-9])[0-9](?:[ \-]?[0-9]){11,}(?![0-9])")
_MAX_DEPTH = 8


def is_sensitive_key(key: object) -> bool:
    if not isinstance(key, str):
        return False
    k = key.lower().replace("-", "_")
    return k in SENSITIVE_KEYS or k.startswith(("card_", "pan_", "cvv_", "cvc_", "expiry_"))


_LONG_RUN = 64


def _has_card_number(digits: str) -> bool:
    n = len(digits)
    if n > _LONG_RUN:  # too long to scan cheaply: redact it whole
        return True
    for length in range(12, min(19, n) + 1):
        for start in range(0, n - length + 1):
            if luhn_valid(digits[start : start + length]):
                return True
    return False


def _replace_run(match: re.Match[str]) -> str:
    digits = re.sub(r"[ \-]", "", match.group(0))
    return REDACTED if _has_card_number(digits) else match.group(0)


def redact_text(text: str) -> str:
    """``text`` with every Luhn-valid 12-19 digit run replaced."""
    return _RUN.sub(_replace_run, text)


def redact_value(value: Any, depth: int = 0) -> Any:
    if depth > _MAX_DEPTH:
        return REDACTED
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, bytes | bytearray):
        return redact_text(bytes(value).decode("latin-1"))
    if isinstance(value, int) and not isinstance(value, bool):
        text = str(value)
        return REDACTED if len(text) >= 12 and redact_text(text) != text else value
    if isinstance(value, dict):
        return {
            k: (REDACTED if is_sensitive_key(k) else redact_value(v, depth + 1))
            for k, v in value.items()
        }
    if isinstance(value, list | set | frozenset):
        return [redact_value(v, depth + 1) for v in value]
    if isinstance(value, tuple):
        return tuple(redact_value(v, depth + 1) for v in value)
    if value is None or isinstance(value, bool | float):
        return value
    return redact_text(repr(value) if not isinstance(value, BaseException) else str(value))


def redact_card_data(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> dict[str, Any]:
    """structlog processor: redact card data from every key and value of the event."""
    try:
        return {
            k: (REDACTED if is_sensitive_key(k) else redact_value(v)) for k, v in event_dict.items()
        }
    except Exception:  # never let a log line carry the data because redaction failed
        return {"event": "log_event_redaction_failed", "level": event_dict.get("level")}
