"""Builds the whole tokeniser from a ``TokenizerConfig`` and a KEK.

``Tokenizer`` owns the key ring, the vault, the token service and (when a
credential is configured) the detokeniser, and makes one ``PaymentSession``
per call. In dev mode, with no KEK given, it creates development keys under a
folder and says so loudly: those keys protect nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

import structlog

from tokenizer.capture import CaptureSettings
from tokenizer.clock import Clock, SystemClock
from tokenizer.config import TokenizerConfig
from tokenizer.detokenize import Detokenizer
from tokenizer.keys import Kek, KeyError_, KeyRing, create_store, new_kek_text, write_secret_file
from tokenizer.session import PaymentSession
from tokenizer.token_service import TokenService
from tokenizer.vault import CardVault, SqliteVaultStore, VaultStore

log = structlog.get_logger(__name__)

DEV_KEK_NAME = "dev-kek.b64"


def load_kek(config: TokenizerConfig) -> Kek:
    """The KEK named by the config: its file if set, else its environment variable."""
    if config.kek_file:
        return Kek.from_file(config.kek_file)
    if config.kek_env and os.environ.get(config.kek_env):
        return Kek.from_env(config.kek_env)
    raise KeyError_(
        f"no KEK: set kek_file or the environment variable {config.kek_env or '(kek_env)'}"
    )


def dev_kek(folder: str | os.PathLike[str]) -> Kek:
    """A development KEK kept in ``folder`` (created on first use)."""
    path = Path(folder) / DEV_KEK_NAME
    if not path.exists():
        write_secret_file(path, new_kek_text() + "\n")
    log.warning(
        "DEVELOPMENT KEYS IN USE",
        detail="the KEK is a plain file next to the data; never use dev mode with real cards",
        kek_file=str(path),
    )
    return Kek.from_file(path)


def open_vault_store(config: TokenizerConfig) -> VaultStore:
    """The configured vault store: SQLite (one node) or PostgreSQL (shared by nodes)."""
    if config.vault_backend == "postgresql":
        from tokenizer.postgres_vault import PostgresVaultStore

        return PostgresVaultStore(config.vault_dsn)
    return SqliteVaultStore(config.vault_path)


class Tokenizer:
    def __init__(self, config: TokenizerConfig, kek: Kek, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        if not Path(config.keystore_path).exists():
            create_store(config.keystore_path, kek)
            log.info("key_store_created", path=config.keystore_path)
        self.keyring = KeyRing(config.keystore_path, kek)
        self.store = open_vault_store(config)
        self.vault = CardVault(self.store, self.keyring, ttl_s=config.ttl_s)
        self.tokens = TokenService(
            self.vault, kind=config.token_kind, scope=config.scope, clock=self.clock
        )
        self.detokenizer = (
            Detokenizer(self.vault, config.detokenize_credential_sha256, self.clock)
            if config.detokenize_credential_sha256
            else None
        )
        self.settings = CaptureSettings(
            display_mode=config.display_mode,
            field_timeout_s=config.field_timeout_s,
            session_timeout_s=config.session_timeout_s,
            max_attempts=config.max_attempts,
            allow_unknown_brand=config.allow_unknown_brand,
        )

    def __repr__(self) -> str:
        return f"Tokenizer(kind={self.config.token_kind!r}, scope={self.config.scope!r})"

    def new_session(
        self,
        *,
        amount_minor: int,
        currency: str,
        reference: str,
        fields: tuple[str, ...] | None = None,
        session_id: str | None = None,
    ) -> PaymentSession:
        return PaymentSession(
            amount_minor=amount_minor,
            currency=currency,
            reference=reference,
            fields=self.config.field_specs(fields),
            token_service=self.tokens,
            settings=self.settings,
            hold_timeout_s=self.config.hold_timeout_s,
            clock=self.clock,
            session_id=session_id,
        )

    def purge_expired(self) -> int:
        return self.tokens.purge_expired()

    def close(self) -> None:
        self.store.close()


def build_tokenizer(
    config: TokenizerConfig,
    kek: Kek | None = None,
    *,
    dev_dir: str | os.PathLike[str] | None = None,
    clock: Clock | None = None,
) -> Tokenizer:
    """The whole stack. KEK: the one given, else the config's, else (dev only) ``dev_dir``'s."""
    if kek is None:
        try:
            kek = load_kek(config)
        except KeyError_:
            if dev_dir is None:
                raise
            kek = dev_kek(dev_dir)
    return Tokenizer(config, kek, clock)
