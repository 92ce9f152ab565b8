"""Hand-off of the card to the payment service provider (PSP).

``PaymentGateway`` is the interface; ``HttpsJsonGateway`` POSTs the card as
JSON over HTTPS with the certificate verified (a CA bundle may be configured
for a private PSP). Redirects are never followed: a 3xx answer fails the
hand-off (``psp_redirect_refused``) so the card is never re-posted to another
URL. Each request carries the payment attempt's ``Idempotency-Key``. Every
failure becomes a ``GatewayResult`` with a reason code and ``retryable=True``:
the session keeps the card in memory for a retry, and no message, exception or
log line carries the request body.

The PSP answers ``{"status": "approved"|"declined", "token": ..., "authorisation": ...}``.
"""

from __future__ import annotations

import json
import ssl
import uuid
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlsplit

import aiohttp
import structlog

from tokenizer.redact import redact_text
from tokenizer.sensitive import SensitiveDigits

log = structlog.get_logger(__name__)

APPROVED, DECLINED, FAILED = "approved", "declined", "failed"
MAX_RESPONSE_BYTES = 64 * 1024


@dataclass
class ChargeRequest:
    """What the PSP needs; the card parts are excluded from ``repr``."""

    pan: SensitiveDigits = field(repr=False)
    expiry: SensitiveDigits = field(repr=False)
    cvv: SensitiveDigits = field(repr=False)
    amount_minor: int
    currency: str
    reference: str
    token: str
    #: one per payment attempt (PaymentSession): the same on a retry, new for a new payment
    idempotency_key: str = field(default_factory=lambda: uuid.uuid4().hex)

    def body(self) -> bytearray:
        """The JSON body as a bytearray the caller wipes after sending."""
        expiry = self.expiry.reveal()
        doc = {
            "pan": self.pan.reveal(),
            "expiry_month": expiry[:2],
            "expiry_year": "20" + expiry[2:],
            "cvv": self.cvv.reveal(),
            "amount": self.amount_minor,
            "currency": self.currency,
            "reference": self.reference,
            "merchant_token": self.token,
        }
        return bytearray(json.dumps(doc).encode())


@dataclass(frozen=True)
class GatewayResult:
    status: str
    retryable: bool
    reason: str | None = None
    psp_token: str | None = None
    authorisation: str | None = None
    http_status: int | None = None

    @property
    def ok(self) -> bool:
        return self.status == APPROVED


class PaymentGateway(Protocol):
    async def charge(self, request: ChargeRequest) -> GatewayResult: ...


def failure_result(reason: str, http_status: int | None = None) -> GatewayResult:
    return GatewayResult(FAILED, True, reason, http_status=http_status)


def _short_text(value: object, limit: int = 128) -> str | None:
    """A PSP-supplied string, cut short, dropped if it looks like a card number."""
    if not isinstance(value, str) or not value:
        return None
    value = value[:limit]
    return value if redact_text(value) == value else None


class HttpsJsonGateway:
    """HTTPS JSON POST adapter; TLS is always verified."""

    def __init__(
        self,
        url: str,
        *,
        ca_file: str | None = None,
        timeout_s: float = 15.0,
        api_key: str | None = None,
    ) -> None:
        if urlsplit(url).scheme != "https":
            raise ValueError("the PSP endpoint must be an https:// URL")
        self.url = url
        self.timeout_s = timeout_s
        self._ssl = ssl.create_default_context(cafile=ca_file)
        self._ssl.minimum_version = ssl.TLSVersion.TLSv1_2
        self._api_key = api_key

    def __repr__(self) -> str:
        return f"HttpsJsonGateway(url={self.url!r})"

    async def charge(self, request: ChargeRequest) -> GatewayResult:
        body = request.body()
        headers = {"Content-Type": "application/json", "Idempotency-Key": request.idempotency_key}
        if self._api_key:
            headers["Authorization"] = f"Bearer {self._api_key}"
        try:
            result = await self._post(bytes(body), headers)
        finally:
            body[:] = bytes(len(body))
        log.info(
            "psp_charge_result",
            status=result.status,
            reason=result.reason,
            http_status=result.http_status,
            retryable=result.retryable,
        )
        return result

    async def _post(self, body: bytes, headers: dict[str, str]) -> GatewayResult:
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as http,
                http.post(
                    self.url, data=body, headers=headers, ssl=self._ssl, allow_redirects=False
                ) as resp,
            ):
                raw = await resp.content.read(MAX_RESPONSE_BYTES + 1)
                status = resp.status
        except TimeoutError:
            return failure_result("timeout")
        except aiohttp.ClientConnectorCertificateError:
            return failure_result("tls_verification_failed")
        except aiohttp.ClientSSLError:
            return failure_result("tls_error")
        except aiohttp.ClientError:
            return failure_result("connection_error")
        if 300 <= status < 400:
            # never follow: a redirect would re-post the card to wherever Location points
            log.warning("psp_redirect_refused", http_status=status)
            return failure_result("psp_redirect_refused", status)
        if 400 <= status < 500:
            return failure_result("psp_rejected_request", status)
        if status >= 500:
            return failure_result("psp_server_error", status)
        if not 200 <= status < 300 or len(raw) > MAX_RESPONSE_BYTES:
            return failure_result("unexpected_response", status)
        try:
            doc = json.loads(raw)
        except ValueError:
            return failure_result("bad_response", status)
        if not isinstance(doc, dict) or doc.get("status") not in (APPROVED, DECLINED):
            return failure_result("bad_response", status)
        if doc["status"] == DECLINED:
            return GatewayResult(
                DECLINED, False, _short_text(doc.get("reason")) or "declined", http_status=status
            )
        return GatewayResult(
            APPROVED,
            False,
            None,
            _short_text(doc.get("token")),
            _short_text(doc.get("authorisation")),
            status,
        )
