"""Card brands from issuer identification number (IIN) ranges, with their valid lengths.

A brand is reported only once the digits entered so far can belong to no other
brand, so the agent desktop sees it appear as soon as it is certain.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Brand:
    name: str
    lengths: frozenset[int]
    cvv_length: int = 3


@dataclass(frozen=True)
class IinRange:
    low: str
    high: str
    brand: str


def _span(a: int, b: int) -> frozenset[int]:
    return frozenset(range(a, b + 1))


BRANDS: dict[str, Brand] = {
    "visa": Brand("visa", frozenset({13, 16, 19})),
    "mastercard": Brand("mastercard", frozenset({16})),
    "amex": Brand("amex", frozenset({15}), cvv_length=4),
    "discover": Brand("discover", _span(16, 19)),
    "jcb": Brand("jcb", _span(16, 19)),
    "unionpay": Brand("unionpay", _span(16, 19)),
    "diners": Brand("diners", _span(14, 19)),
    "maestro": Brand("maestro", _span(12, 19)),
}

IIN_RANGES: tuple[IinRange, ...] = (
    IinRange("4", "4", "visa"),
    IinRange("51", "55", "mastercard"),
    IinRange("2221", "2720", "mastercard"),
    IinRange("34", "34", "amex"),
    IinRange("37", "37", "amex"),
    IinRange("6011", "6011", "discover"),
    IinRange("644", "649", "discover"),
    IinRange("65", "65", "discover"),
    IinRange("3528", "3589", "jcb"),
    IinRange("62", "62", "unionpay"),
    IinRange("300", "305", "diners"),
    IinRange("3095", "3095", "diners"),
    IinRange("36", "36", "diners"),
    IinRange("38", "39", "diners"),
    IinRange("5018", "5018", "maestro"),
    IinRange("5020", "5020", "maestro"),
    IinRange("5038", "5038", "maestro"),
    IinRange("5893", "5893", "maestro"),
    IinRange("6304", "6304", "maestro"),
    IinRange("6759", "6759", "maestro"),
    IinRange("6761", "6763", "maestro"),
)

PAN_MIN_LENGTH = 12
PAN_MAX_LENGTH = 19


def _full_match(prefix: str, r: IinRange) -> bool:
    n = len(r.low)
    return len(prefix) >= n and r.low <= prefix[:n] <= r.high


def _could_match(prefix: str, r: IinRange) -> bool:
    n = len(prefix)
    return n < len(r.low) and r.low[:n] <= prefix <= r.high[:n]


def detect_brand(prefix: str) -> str | None:
    """Brand name once ``prefix`` (the leading PAN digits) fixes it, else None."""
    if not prefix:
        return None
    full = [r for r in IIN_RANGES if _full_match(prefix, r)]
    if not full:
        return None
    possible = {r.brand for r in IIN_RANGES if _could_match(prefix, r)}
    best = max(full, key=lambda r: len(r.low))
    if possible - {best.brand}:
        return None
    return best.brand


def brand_info(name: str | None) -> Brand | None:
    return BRANDS.get(name) if name else None


def valid_length(brand: str | None, length: int) -> bool:
    """True when ``length`` is a valid PAN length for ``brand`` (any 12-19 when unknown)."""
    info = brand_info(brand)
    if info is None:
        return PAN_MIN_LENGTH <= length <= PAN_MAX_LENGTH
    return length in info.lengths


def max_length(brand: str | None) -> int:
    """Longest PAN the brand issues: entry ends by itself on reaching it."""
    info = brand_info(brand)
    return max(info.lengths) if info else PAN_MAX_LENGTH


def cvv_length(brand: str | None) -> int:
    info = brand_info(brand)
    return info.cvv_length if info else 3
