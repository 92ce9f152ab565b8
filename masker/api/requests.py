"""Parsing and validating request bodies into small dataclasses (400 on anything off)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from masker.errors import ApiError

FIELDS = ("pan", "expiry", "cvv", "postcode")
DEFAULT_FIELDS = ("pan", "expiry", "cvv")
# The tokeniser always needs the card number and expiry, in that order; CVV and
# postcode are optional.  Listing the combinations keeps the schema exact.
FIELD_SETS = (
    ("pan", "expiry", "cvv"),
    ("pan", "expiry"),
    ("pan", "expiry", "cvv", "postcode"),
    ("pan", "expiry", "postcode"),
)
AMOUNT = re.compile(r"^(0\.(0[1-9]|[1-9][0-9]?)|[1-9][0-9]{0,8}(\.[0-9]{1,2})?)$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
# At most 11 digits in all, so a merchant reference can never carry a card number.
REFERENCE = re.compile(r"^(?!(?:[^0-9]*[0-9]){12})[A-Za-z0-9 ._/:#-]{1,64}$")
MAX_BODY = 4096


@dataclass(frozen=True)
class CaptureRequest:
    amount: str
    currency: str
    reference: str
    fields: tuple[str, ...]


async def json_body(request: web.Request) -> dict[str, Any]:
    """The request's JSON object, or a 400/413/415 ApiError."""
    if request.content_length is not None and request.content_length > MAX_BODY:
        raise ApiError(413, "payload_too_large", f"body larger than {MAX_BODY} bytes")
    raw = await request.content.read(MAX_BODY + 1)
    if len(raw) > MAX_BODY:
        raise ApiError(413, "payload_too_large", f"body larger than {MAX_BODY} bytes")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "malformed_json", "request body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "invalid_request", "request body must be a JSON object")
    return body


def _string(body: dict[str, Any], key: str, pattern: re.Pattern[str], what: str) -> str:
    value = body.get(key)
    if not isinstance(value, str):
        raise ApiError(400, "invalid_request", f"'{key}' must be a string ({what})")
    if not pattern.fullmatch(value):
        raise ApiError(400, "invalid_request", f"'{key}' must be {what}")
    return value


def parse_capture(body: dict[str, Any]) -> CaptureRequest:
    unknown = set(body) - {"amount", "currency", "reference", "fields"}
    if unknown:
        raise ApiError(400, "invalid_request", f"unknown key(s): {', '.join(sorted(unknown))}")
    amount = _string(body, "amount", AMOUNT, 'a positive decimal amount like "12.50"')
    currency = _string(body, "currency", CURRENCY, 'an ISO 4217 code like "GBP"')
    reference = _string(
        body, "reference", REFERENCE, "1-64 letters, digits or ._/:#- with at most 11 digits"
    )
    fields = body.get("fields", list(DEFAULT_FIELDS))
    if not isinstance(fields, list) or tuple(fields) not in FIELD_SETS:
        choices = " or ".join(str(list(f)) for f in FIELD_SETS)
        raise ApiError(400, "invalid_request", f"'fields' must be one of {choices}")
    return CaptureRequest(amount, currency, reference, tuple(fields))


def parse_restart(body: dict[str, Any]) -> str:
    if set(body) - {"field"}:
        raise ApiError(400, "invalid_request", "only 'field' is accepted")
    field = body.get("field")
    if not isinstance(field, str) or field not in FIELDS:
        raise ApiError(400, "invalid_request", f"'field' must be one of {FIELDS}")
    return field
