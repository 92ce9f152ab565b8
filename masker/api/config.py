"""Settings of the agent-desktop API: listener, credentials, embedding, abuse limits."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from masker.errors import UserError

ROLES = ("agent", "supervisor")


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

    `jwt_secret` verifies HS256 bearer tokens (claims `sub`, `role`, `exp`).
    `api_keys` are static agent/supervisor credentials.  `frame_ancestors` is
    the CSP list of origins allowed to embed /desktop in an iframe.
    `auth_failures`/`auth_window_s` rate-limit failed logins per client IP.
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

    @classmethod
    def from_mapping(cls, table: Mapping[str, Any]) -> ApiConfig:
        """Build from the `[api]` table; secrets come from files or the environment."""
        known = {
            "host", "port", "jwt_secret_file", "jwt_secret_env", "jwt_audience", "keys",
            "frame_ancestors", "auth_failures", "auth_window_s", "ws_auth_timeout_s",
            "feed_queue_limit",
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
            jwt_audience=table.get("jwt_audience"),
            api_keys=keys,
            frame_ancestors=_words(table.get("frame_ancestors", cls.frame_ancestors)),
            auth_failures=int(table.get("auth_failures", cls.auth_failures)),
            auth_window_s=float(table.get("auth_window_s", cls.auth_window_s)),
            ws_auth_timeout_s=float(table.get("ws_auth_timeout_s", cls.ws_auth_timeout_s)),
            feed_queue_limit=int(table.get("feed_queue_limit", cls.feed_queue_limit)),
        )


def _words(value: Any) -> tuple[str, ...]:
    """A list from TOML, or a comma/space separated string from the environment."""
    if isinstance(value, str):
        return tuple(w for w in value.replace(",", " ").split() if w)
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise UserError("[api] frame_ancestors must be a list of origins")


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
