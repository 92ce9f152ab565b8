"""Detokenisation for the payment side only, behind its own credential.

Agent desktops never get this: it is a separate object and a separate HTTP app
(bind it to an address only the payment systems reach). The credential is
kept as a SHA-256 digest and compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac

import structlog
from aiohttp import web

from tokenizer.clock import Clock, SystemClock
from tokenizer.vault import CardData, CardVault, VaultError

log = structlog.get_logger(__name__)


class DetokenizeDenied(Exception):
    """Wrong or missing credential."""


def credential_digest(credential: str) -> str:
    return hashlib.sha256(credential.encode()).hexdigest()


class Detokenizer:
    def __init__(self, vault: CardVault, credential_sha256: str, clock: Clock | None = None):
        if len(credential_sha256) != 64:
            raise ValueError("credential_sha256 must be a hex SHA-256 digest")
        self._vault = vault
        self._digest = bytes.fromhex(credential_sha256)
        self._clock = clock or SystemClock()

    def __repr__(self) -> str:
        return "Detokenizer(credential=<hidden>)"

    def detokenize(self, token: str, credential: str) -> CardData:
        """Open the card behind ``token``; the caller must ``wipe()`` the result."""
        given = hashlib.sha256(credential.encode()).digest()
        if not hmac.compare_digest(given, self._digest):
            log.warning("detokenize_denied")
            raise DetokenizeDenied("detokenisation credential rejected")
        card = self._vault.open(token, self._clock.now().timestamp())
        log.info("detokenized", token=token)
        return card


def detokenize_app(detokenizer: Detokenizer) -> web.Application:
    """``POST /v1/detokenize {"token": ...}`` with ``Authorization: Bearer <credential>``."""

    async def handle(request: web.Request) -> web.Response:
        auth = request.headers.get("Authorization", "")
        credential = auth[7:] if auth.startswith("Bearer ") else ""
        try:
            doc = await request.json()
            token = doc["token"]
            if not isinstance(token, str):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return web.json_response({"error": "bad_request"}, status=400)
        try:
            card = detokenizer.detokenize(token, credential)
        except DetokenizeDenied:
            return web.json_response({"error": "unauthorized"}, status=401)
        except VaultError:
            return web.json_response({"error": "not_found"}, status=404)
        try:
            expiry = card.expiry.reveal()
            body = {
                "token": token,
                "pan": card.pan.reveal(),
                "expiry_month": expiry[:2],
                "expiry_year": "20" + expiry[2:],
                "brand": card.brand,
                "psp_token": card.psp_token,
            }
        finally:
            card.wipe()
        return web.json_response(body, headers={"Cache-Control": "no-store"})

    app = web.Application()
    app.router.add_post("/v1/detokenize", handle)
    return app
