"""Luhn (mod 10) check used by card numbers, by the FPE token rule and by the log redactor."""

from __future__ import annotations

_DOUBLED = (0, 2, 4, 6, 8, 1, 3, 5, 7, 9)


def luhn_sum(digits: str | bytes) -> int:
    """Luhn checksum modulo 10 of a digit string (0 means valid)."""
    total = 0
    data = digits.encode("ascii") if isinstance(digits, str) else digits
    for pos, ch in enumerate(reversed(data)):
        d = ch - 48
        if not 0 <= d <= 9:
            raise ValueError("not a digit string")
        total += _DOUBLED[d] if pos % 2 else d
    return total % 10


def luhn_valid(digits: str | bytes) -> bool:
    """True when the string is non-empty digits whose Luhn checksum is 0."""
    return bool(digits) and luhn_sum(digits) == 0


def luhn_check_digit(partial: str) -> str:
    """The digit to append to ``partial`` so the result passes Luhn."""
    return str((10 - luhn_sum(partial + "0")) % 10)
