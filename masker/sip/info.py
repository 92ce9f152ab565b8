"""Keypad digits carried in SIP INFO bodies (application/dtmf-relay, application/dtmf)."""

from __future__ import annotations

KEYS = "0123456789*#ABCD"
DTMF_TYPES = ("application/dtmf-relay", "application/dtmf")


def is_dtmf_info(content_type: str | None) -> bool:
    return (content_type or "").split(";")[0].strip().lower() in DTMF_TYPES


def info_digit(content_type: str | None, body: str) -> str | None:
    """The key in a DTMF INFO body, or None when the body names no keypad key."""
    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype == "application/dtmf":
        value = body.strip()
    elif ctype == "application/dtmf-relay":
        value = ""
        for line in body.replace("\r", "\n").split("\n"):
            key, sep, val = line.partition("=")
            if sep and key.strip().lower() == "signal":
                value = val.strip()
                break
    else:
        return None
    if value.isdigit() and 0 <= int(value) <= 15 and len(value) <= 2:
        value = KEYS[int(value)] if len(value) == 2 else value
    value = value.upper()
    return value if len(value) == 1 and value in KEYS else None
