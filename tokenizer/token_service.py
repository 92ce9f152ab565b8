"""Issues a token for a captured card and records the card in the vault.

One service per scope (merchant). The same card in the same scope gets the same
token while its record lives; the record's expiry is then refreshed.
"""

from __future__ import annotations

import structlog

from tokenizer.clock import Clock, SystemClock
from tokenizer.sensitive import SensitiveDigits
from tokenizer.tokens import (
    TOKEN_KINDS,
    FpeTokenizer,
    IssuedToken,
    card_fingerprint,
    fpe_key,
    new_vault_token,
)
from tokenizer.vault import CardVault

log = structlog.get_logger(__name__)


class TokenService:
    def __init__(
        self, vault: CardVault, *, kind: str = "vault", scope: str = "default",
        clock: Clock | None = None,
    ) -> None:
        if kind not in TOKEN_KINDS:
            raise ValueError(f"unknown token kind {kind!r}")
        self.vault = vault
        self.kind = kind
        self.scope = scope
        self.clock = clock or SystemClock()

    def __repr__(self) -> str:
        return f"TokenService(kind={self.kind!r}, scope={self.scope!r})"

    def _new_token(self, pan: SensitiveDigits) -> str:
        if self.kind == "vault":
            return new_vault_token()
        keyring = self.vault.keyring
        return FpeTokenizer(fpe_key(keyring.data_key(keyring.active_key_id), self.scope),
                            self.scope).tokenize(pan)

    def issue(self, pan: SensitiveDigits, expiry: SensitiveDigits, brand: str) -> IssuedToken:
        """Token for the card, stored (sealed) in the vault with its expiry. Never the CVV."""
        now = self.clock.now().timestamp()
        fingerprint = card_fingerprint(self.vault.keyring.index_key(), self.scope, pan)
        existing = self.vault.store.find(self.scope, fingerprint, now)
        token = existing.token if existing else self._new_token(pan)
        record = self.vault.store_card(
            token=token, scope=self.scope, fingerprint=fingerprint, pan=pan, expiry=expiry,
            brand=brand, now=now,
        )
        log.info("token_issued", token_kind=self.kind, reused=existing is not None,
                 key_id=record.key_id, brand=brand)
        return IssuedToken(token, self.kind, brand, record.last4, record.pan_length,
                           existing is not None)

    def record_psp_result(
        self, token: str, psp_token: str | None, authorisation: str | None
    ) -> None:
        self.vault.store.set_psp_result(token, psp_token, authorisation)

    def purge_expired(self) -> int:
        n = self.vault.purge_expired(self.clock.now().timestamp())
        if n:
            log.info("vault_purged", records=n)
        return n
