"""Issues a token for a captured card and records the card in the vault.

One service per scope (merchant). The same card in the same scope gets the same
token while its record lives, also when two threads or nodes issue it at once (the
vault keeps one record per card and the later writer gets the earlier one's token);
the record's expiry is then refreshed.  A token held
by another card is never overwritten: the vault refuses it and the card takes its
next candidate (FPE: the next point of its FF1 cycle; vault tokens: a new random one).
"""

from __future__ import annotations

from collections.abc import Iterator

import structlog

from tokenizer.clock import Clock, SystemClock
from tokenizer.sensitive import SensitiveDigits
from tokenizer.tokens import (
    TOKEN_CANDIDATES,
    TOKEN_KINDS,
    FpeTokenizer,
    IssuedToken,
    card_fingerprint,
    fpe_key,
    new_vault_token,
)
from tokenizer.vault import CardVault, TokenCollision, VaultError

log = structlog.get_logger(__name__)


class TokenService:
    def __init__(
        self,
        vault: CardVault,
        *,
        kind: str = "vault",
        scope: str = "default",
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

    def _new_tokens(self, pan: SensitiveDigits) -> Iterator[str]:
        if self.kind == "vault":
            return (new_vault_token() for _ in range(TOKEN_CANDIDATES))
        data_key = self.vault.keyring.data_key(self.vault.active_key_id)
        return FpeTokenizer(fpe_key(data_key, self.scope), self.scope).candidates(pan)

    def issue(self, pan: SensitiveDigits, expiry: SensitiveDigits, brand: str) -> IssuedToken:
        """Token for the card, stored (sealed) in the vault with its expiry. Never the CVV."""
        now = self.clock.now().timestamp()
        fingerprint = card_fingerprint(self.vault.keyring.index_key(), self.scope, pan)
        existing = self.vault.store.find(self.scope, fingerprint, now)
        tokens = iter([existing.token]) if existing else self._new_tokens(pan)
        collisions = 0
        for token in tokens:
            try:
                record = self.vault.store_card(
                    token=token,
                    scope=self.scope,
                    fingerprint=fingerprint,
                    pan=pan,
                    expiry=expiry,
                    brand=brand,
                    now=now,
                )
                break
            except TokenCollision:
                collisions += 1
        else:
            log.error("token_space_exhausted", token_kind=self.kind, collisions=collisions)
            raise VaultError("no free token for this card: every candidate is taken")
        if collisions:
            log.warning("token_collision_resolved", token_kind=self.kind, collisions=collisions)
        # record.token, not token: another thread or node may have stored the card first
        reused = existing is not None or record.token != token
        log.info(
            "token_issued", token_kind=self.kind, reused=reused, key_id=record.key_id, brand=brand
        )
        return IssuedToken(record.token, self.kind, brand, record.last4, record.pan_length, reused)

    def record_psp_result(
        self, token: str, psp_token: str | None, authorisation: str | None
    ) -> None:
        self.vault.store.set_psp_result(token, psp_token, authorisation)

    def purge_expired(self) -> int:
        n = self.vault.purge_expired(self.clock.now().timestamp())
        if n:
            log.info("vault_purged", records=n)
        return n
