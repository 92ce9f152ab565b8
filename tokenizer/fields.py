"""The fields a caller keys and the rules that make each one valid.

Validation returns a reason code, never the digits, so its result can go to
the agent desktop and the logs as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from tokenizer import brands
from tokenizer.luhn import luhn_valid
from tokenizer.sensitive import SensitiveDigits

FIELD_KINDS = ("pan", "expiry", "cvv", "postcode", "custom")
MAX_EXPIRY_YEARS_AHEAD = 20


@dataclass(frozen=True)
class FieldSpec:
    """One field to collect: its name, kind and length limits."""

    name: str
    kind: str
    min_length: int
    max_length: int

    def __post_init__(self) -> None:
        if self.kind not in FIELD_KINDS:
            raise ValueError(f"unknown field kind {self.kind!r}")
        if not 1 <= self.min_length <= self.max_length:
            raise ValueError("field lengths must satisfy 1 <= min <= max")


PAN = FieldSpec("pan", "pan", brands.PAN_MIN_LENGTH, brands.PAN_MAX_LENGTH)
EXPIRY = FieldSpec("expiry", "expiry", 4, 4)
CVV = FieldSpec("cvv", "cvv", 3, 4)
POSTCODE = FieldSpec("postcode", "postcode", 3, 10)


def custom_field(name: str, min_length: int, max_length: int) -> FieldSpec:
    return FieldSpec(name, "custom", min_length, max_length)


STANDARD_FIELDS = {"pan": PAN, "expiry": EXPIRY, "cvv": CVV, "postcode": POSTCODE}


@dataclass(frozen=True)
class Validation:
    valid: bool
    reason: str | None = None

    @classmethod
    def ok(cls) -> Validation:
        return cls(True, None)

    @classmethod
    def bad(cls, reason: str) -> Validation:
        return cls(False, reason)


def validate_pan(pan: SensitiveDigits, allow_unknown_brand: bool = False) -> Validation:
    n = len(pan)
    if n < brands.PAN_MIN_LENGTH:
        return Validation.bad("too_short")
    if n > brands.PAN_MAX_LENGTH:
        return Validation.bad("too_long")
    brand = brands.detect_brand(pan.first(6))
    if brand is None and not allow_unknown_brand:
        return Validation.bad("unknown_brand")
    if not brands.valid_length(brand, n):
        return Validation.bad("bad_length_for_brand")
    if not luhn_valid(pan.reveal_bytes()):
        return Validation.bad("luhn_failed")
    return Validation.ok()


def parse_expiry(expiry: SensitiveDigits) -> tuple[int, int]:
    """(year, month) of an MMYY expiry; the caller must have checked its length."""
    text = expiry.reveal()
    return 2000 + int(text[2:4]), int(text[0:2])


def validate_expiry(expiry: SensitiveDigits, now: datetime) -> Validation:
    if len(expiry) < 4:
        return Validation.bad("too_short")
    if len(expiry) > 4:
        return Validation.bad("too_long")
    year, month = parse_expiry(expiry)
    if not 1 <= month <= 12:
        return Validation.bad("bad_month")
    if (year, month) < (now.year, now.month):
        return Validation.bad("expired")
    if year > now.year + MAX_EXPIRY_YEARS_AHEAD:
        return Validation.bad("too_far_ahead")
    return Validation.ok()


def validate_cvv(cvv: SensitiveDigits, brand: str | None) -> Validation:
    want = brands.cvv_length(brand)
    if len(cvv) < want:
        return Validation.bad("too_short")
    if len(cvv) > want:
        return Validation.bad("too_long")
    return Validation.ok()


def validate_length(value: SensitiveDigits, spec: FieldSpec) -> Validation:
    if len(value) < spec.min_length:
        return Validation.bad("too_short")
    if len(value) > spec.max_length:
        return Validation.bad("too_long")
    return Validation.ok()


def max_length_for(spec: FieldSpec, brand: str | None) -> int:
    """The length at which entry of this field ends without ``#``."""
    if spec.kind == "pan":
        return brands.max_length(brand)
    if spec.kind == "cvv":
        return brands.cvv_length(brand)
    return spec.max_length


def validate(
    spec: FieldSpec,
    value: SensitiveDigits,
    *,
    brand: str | None,
    now: datetime,
    allow_unknown_brand: bool = False,
) -> Validation:
    """Validate one field's digits by its kind."""
    if spec.kind == "pan":
        return validate_pan(value, allow_unknown_brand)
    if spec.kind == "expiry":
        return validate_expiry(value, now)
    if spec.kind == "cvv":
        return validate_cvv(value, brand)
    return validate_length(value, spec)
