"""Settings of the agent-desktop API: listener, credentials, embedding, abuse limits."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from masker.api.proxies import parse_networks
from masker.errors import UserError

ROLES = ("agent", "supervisor", "metrics")
# Roles that may read /metrics (besides the generated `developer` key): the live
# counters show how many keys callers press and when, so agents may not.
METRICS_ROLES = frozenset({"supervisor", "metrics", "developer"})
MIN_JWT_SECRET_BYTES = 32
DEFAULT_JWT_MAX_LIFETIME_S = 12 * 3600.0


@dataclass(frozen=True)
class ApiKey:
    """A static credential from config: who it is and what it may do.

    Only the SHA-256 of the key is kept, so a config dump or a repr() never
    holds a usable credential.
    """

    sha256: str
    sub: str
    role: str = "agent"

    @classmethod
    def from_clear(cls, key: str, sub: str, role: str = "agent") -> ApiKey:
        return cls(hashlib.sha256(key.encode()).hexdigest(), sub, role)


@dataclass(frozen=True)
class ApiConfig:
    """Everything the API server needs; built from the `[api]` TOML table.

    `jwt_secret` (at least 32 bytes) verifies HS256 bearer tokens (claims `sub`,
    `role`, `aud` = `jwt_audience`, `iat`, `exp`, with `exp - iat` at most
    `jwt_max_lifetime_s`).  `api_keys` are static agent/supervisor/metrics
    credentials.  `frame_ancestors` is the CSP list of origins allowed to embed
    /desktop in an iframe.  `auth_failures`/`auth_window_s` limit failed logins
    per presented credential and per client address (tables capped at
    `auth_table_size` entries each).  `/metrics` needs a supervisor or metrics
    credential unless `metrics_public`.  Live feeds: at most
    `ws_feeds_per_principal` per credential holder and `ws_feeds_per_address` per
    client address; at most `ws_pending_per_address` WebSockets of one address may
    be waiting for their auth message (`ws_auth_timeout_s`).
    """

    host: str = "127.0.0.1"
    port: int = 8080
    jwt_secret: bytes | None = field(default=None, repr=False)
    jwt_audience: str | None = None
    api_keys: tuple[ApiKey, ...] = field(default=(), repr=False)
    frame_ancestors: tuple[str, ...] = ("'self'",)
    auth_failures: int = 10
    auth_window_s: float = 60.0
    ws_auth_timeout_s: float = 5.0
    feed_queue_limit: int = 1000
    jwt_max_lifetime_s: float = DEFAULT_JWT_MAX_LIFETIME_S
    metrics_public: bool = False
    auth_table_size: int = 10_000
    ws_feeds_per_principal: int = 8
    ws_feeds_per_address: int = 500
    ws_pending_per_address: int = 16
    # Reverse proxies (addresses or CIDR) whose X-Forwarded-For names the client
    # (masker.api.proxies); empty = the peer is the client.
    trusted_proxies: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.jwt_secret is not None and self.jwt_secret:
            if len(self.jwt_secret) < MIN_JWT_SECRET_BYTES:
                raise UserError(
                    f"[api] the JWT secret must be at least {MIN_JWT_SECRET_BYTES} "
                    f"bytes (it is {len(self.jwt_secret)})"
                )
            if not self.jwt_audience:
                raise UserError(
                    "[api] jwt_audience is required with a JWT secret: tokens "
                    "must name this service in their `aud` claim"
                )
        if not 0 < self.jwt_max_lifetime_s <= 7 * 24 * 3600:
            raise UserError("[api] jwt_max_lifetime_s must be > 0 and at most 7 days")
        try:
            parse_networks(self.trusted_proxies)
        except ValueError:
            raise UserError("[api] trusted_proxies must be addresses or CIDR networks") from None
        if not 0 < self.ws_auth_timeout_s <= 30:
            raise UserError("[api] ws_auth_timeout_s must be > 0 and at most 30")
        for name in (
            "auth_failures",
            "auth_table_size",
            "ws_feeds_per_principal",
            "ws_feeds_per_address",
            "ws_pending_per_address",
            "feed_queue_limit",
        ):
            if getattr(self, name) < 1:
                raise UserError(f"[api] {name} must be at least 1")

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any]) -> ApiConfig:
        """Build from the `[api]` table; secrets come from files or the environment."""
        known = {
            "host",
            "port",
            "jwt_secret_file",
            "jwt_secret_env",
            "jwt_audience",
            "keys",
            "frame_ancestors",
            "auth_failures",
            "auth_window_s",
            "ws_auth_timeout_s",
            "feed_queue_limit",
            "jwt_max_lifetime_s",
            "metrics_public",
            "auth_table_size",
            "ws_feeds_per_principal",
            "ws_feeds_per_address",
            "ws_pending_per_address",
            "trusted_proxies",
        }
        unknown = set(table) - known
        if unknown:
            raise UserError(f"unknown [api] key(s): {', '.join(sorted(unknown))}")
        entries = table.get("keys", ())
        if not isinstance(entries, list | tuple) or not all(
            isinstance(e, Mapping) for e in entries
        ):
            raise UserError("[api] keys must be a list of tables {sub, role, sha256|key_env}")
        keys = tuple(_api_key(entry) for entry in entries)
        return cls(
            host=str(table.get("host", cls.host)),
            port=int(table.get("port", cls.port)),
            jwt_secret=_read_secret(table.get("jwt_secret_file"), table.get("jwt_secret_env")),
            jwt_audience=str(table["jwt_audience"]) if table.get("jwt_audience") else None,
            api_keys=keys,
            frame_ancestors=_words(table.get("frame_ancestors", cls.frame_ancestors)),
            trusted_proxies=_words(table.get("trusted_proxies", ()), "trusted_proxies"),
            auth_failures=int(table.get("auth_failures", cls.auth_failures)),
            auth_window_s=float(table.get("auth_window_s", cls.auth_window_s)),
            ws_auth_timeout_s=float(table.get("ws_auth_timeout_s", cls.ws_auth_timeout_s)),
            feed_queue_limit=int(table.get("feed_queue_limit", cls.feed_queue_limit)),
            jwt_max_lifetime_s=float(table.get("jwt_max_lifetime_s", cls.jwt_max_lifetime_s)),
            metrics_public=_bool(table.get("metrics_public", False), "metrics_public"),
            **{
                name: int(table.get(name, getattr(cls, name)))
                for name in (
                    "auth_table_size",
                    "ws_feeds_per_principal",
                    "ws_feeds_per_address",
                    "ws_pending_per_address",
                )
            },
        )


def _bool(value: Any, name: str) -> bool:
    """A TOML boolean, or its spelling in an environment string."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "1", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("false", "0", "no", "off", ""):
        return False
    raise UserError(f"[api] {name} must be true or false")


def _words(value: Any, name: str = "frame_ancestors") -> tuple[str, ...]:
    """A list from TOML, or a comma/space separated string from the environment."""
    if isinstance(value, str):
        return tuple(w for w in value.replace(",", " ").split() if w)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    what = "origins" if name == "frame_ancestors" else "addresses"
    raise UserError(f"[api] {name} must be a list of {what}")


def _api_key(entry: Mapping[str, Any]) -> ApiKey:
    role = entry.get("role", "agent")
    if role not in ROLES:
        raise UserError(f"[api.keys] role must be one of {ROLES}, not {role!r}")
    if "sub" not in entry:
        raise UserError("[api.keys] entry needs 'sub' (the agent id)")
    if "sha256" in entry:
        return ApiKey(str(entry["sha256"]).lower(), str(entry["sub"]), role)
    if "key_env" in entry:
        value = os.environ.get(entry["key_env"])
        if not value:
            raise UserError(f"[api.keys] environment variable {entry['key_env']} is empty")
        return ApiKey.from_clear(value, str(entry["sub"]), role)
    raise UserError("[api.keys] entry needs 'sha256' or 'key_env'")


def _read_secret(path: str | None, env: str | None) -> bytes | None:
    if path:
        try:
            return Path(path).read_bytes().strip()
        except OSError as exc:
            raise UserError(f"cannot read [api] jwt_secret_file: {exc.strerror}") from None
    if env:
        value = os.environ.get(env)
        if not value:
            raise UserError(f"[api] jwt_secret_env: environment variable {env} is empty")
        return value.encode()
    return None
