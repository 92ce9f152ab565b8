"""``TokenizerConfig``: every setting of the tokeniser stack, with safe defaults."""

from __future__ import annotations

from dataclasses import dataclass, field

from tokenizer.display import DISPLAY_MODES
from tokenizer.fields import STANDARD_FIELDS, FieldSpec, custom_field
from tokenizer.tokens import TOKEN_KINDS
from tokenizer.vault import DEFAULT_TTL_S

#: "sqlite": the embedded one-node vault at vault_path; "postgresql": one vault shared by
#: every node, at vault_dsn (tokenizer.postgres_vault).
VAULT_BACKENDS = ("sqlite", "postgresql")


@dataclass(frozen=True)
class TokenizerConfig:
    token_kind: str = "vault"  # "vault" | "fpe"
    display_mode: str = "last4"  # "last4" | "bin_last4"
    field_timeout_s: float = 10.0  # no key for this long ends a started field
    session_timeout_s: float = 180.0  # no key for this long ends the capture
    hold_timeout_s: float = 300.0  # a token not handed off by then is dropped
    max_attempts: int = 3  # invalid entries of one field before giving up
    allow_unknown_brand: bool = False
    scope: str = "default"  # merchant scope: tokens are unique per card per scope
    fields: tuple[str, ...] = ("pan", "expiry", "cvv")
    custom_fields: tuple[tuple[str, int, int], ...] = ()  # (name, min_length, max_length)
    vault_backend: str = "sqlite"
    vault_path: str = "var/vault.sqlite3"
    vault_dsn: str = field(default="", repr=False)  # may hold a password: never shown
    keystore_path: str = "var/keys.json"
    kek_file: str | None = None
    kek_env: str | None = "MASKER_KEK"
    ttl_s: float = DEFAULT_TTL_S
    detokenize_credential_sha256: str | None = None

    def __post_init__(self) -> None:
        if self.token_kind not in TOKEN_KINDS:
            raise ValueError(f"token_kind must be one of {TOKEN_KINDS}")
        if self.display_mode not in DISPLAY_MODES:
            raise ValueError(f"display_mode must be one of {DISPLAY_MODES}")
        if self.vault_backend not in VAULT_BACKENDS:
            raise ValueError(f"vault_backend must be one of {VAULT_BACKENDS}")
        if self.vault_backend == "postgresql" and not self.vault_dsn:
            raise ValueError("vault_backend 'postgresql' needs a vault_dsn")
        if self.ttl_s <= 0 or self.field_timeout_s <= 0 or self.session_timeout_s <= 0:
            raise ValueError("timeouts and TTL must be positive")
        self.field_specs()

    def field_specs(self, names: tuple[str, ...] | None = None) -> tuple[FieldSpec, ...]:
        custom = {name: custom_field(name, lo, hi) for name, lo, hi in self.custom_fields}
        specs = []
        for name in names or self.fields:
            spec = STANDARD_FIELDS.get(name) or custom.get(name)
            if spec is None:
                raise ValueError(f"unknown field {name!r}")
            specs.append(spec)
        return tuple(specs)
