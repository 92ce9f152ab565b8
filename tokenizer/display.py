"""Masked display of a card number for the agent desktop (PCI DSS 3.4.1).

At most the first six and last four digits of a complete PAN are shown, and by
default only the last four. While the PAN is still being keyed nothing but
bullets is shown: the "last four so far" would reveal middle digits one by one.
Other fields are shown as bullets only.
"""

from __future__ import annotations

from tokenizer.sensitive import SensitiveDigits

BULLET = "\u2022"
DISPLAY_MODES = ("last4", "bin_last4")


def _group(chars: str, size: int = 4) -> str:
    return " ".join(chars[i : i + size] for i in range(0, len(chars), size))


def mask_pan(pan: SensitiveDigits, *, complete: bool, mode: str = "last4") -> str:
    """Grouped PAN display: bullets, plus last four (and BIN) once complete."""
    if mode not in DISPLAY_MODES:
        raise ValueError(f"unknown display mode {mode!r}")
    n = len(pan)
    if not complete or n < 12:
        return _group(BULLET * n)
    head = pan.first(6) if mode == "bin_last4" else ""
    tail = pan.last(4)
    return _group(head + BULLET * (n - len(head) - 4) + tail)


def mask_token_display(bin6: str, last4: str, length: int, mode: str = "last4") -> str:
    """The same display built from the parts a token record keeps."""
    head = bin6 if mode == "bin_last4" else ""
    return _group(head + BULLET * (length - len(head) - 4) + last4)


def mask_other(value: SensitiveDigits) -> str:
    return BULLET * len(value)
