"""Who is calling: bearer JWT (HS256) or static API key, and a per-IP brake on failures.

The presented credential is never logged or echoed; failures are logged with
the client address and a reason code only.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import jwt
import structlog

from masker.api.config import ROLES, ApiConfig
from masker.metrics import API_AUTH_FAILURES

log = structlog.get_logger()


@dataclass(frozen=True)
class Principal:
    """An authenticated desktop: the agent id (`sub`) and its role."""

    sub: str
    role: str

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"

    def may_see(self, agent_id: str | None) -> bool:
        """Agents see only the calls bound to them; supervisors see every call, and so
        does the generated development key (role `developer`, masker/devaccess.py), which
        no JWT and no configured key can claim."""
        if self.is_supervisor or self.role == "developer":
            return True
        return agent_id is not None and agent_id == self.sub


class AuthError(Exception):
    """Authentication failed; `reason` is a short code safe to log and return."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class FailureLimiter:
    """Sliding-window count of failed authentications per client address."""

    def __init__(self, limit: int, window_s: float, clock: Callable[[], float] = time.monotonic):
        self._limit = limit
        self._window = window_s
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def _recent(self, client: str) -> deque[float]:
        now = self._clock()
        stamps = self._failures.get(client)
        if stamps is None:
            return deque()
        while stamps and now - stamps[0] > self._window:
            stamps.popleft()
        if not stamps:
            del self._failures[client]
        return stamps

    def blocked(self, client: str) -> float:
        """Seconds until `client` may try again (0 when not blocked)."""
        stamps = self._recent(client)
        if len(stamps) < self._limit:
            return 0.0
        return max(0.0, self._window - (self._clock() - stamps[0]))

    def record_failure(self, client: str) -> None:
        self._recent(client)
        self._failures.setdefault(client, deque()).append(self._clock())


class Authenticator:
    """Turns a bearer credential into a Principal, or raises AuthError."""

    def __init__(self, config: ApiConfig):
        self._secret = config.jwt_secret
        self._audience = config.jwt_audience
        self._keys = {k.sha256: k for k in config.api_keys}

    def authenticate(self, credential: str) -> Principal:
        principal = self._from_api_key(credential)
        if principal is not None:
            return principal
        if credential.count(".") == 2 and self._secret:
            return self._from_jwt(credential)
        raise AuthError("invalid_credential")

    def _from_api_key(self, credential: str) -> Principal | None:
        digest = hashlib.sha256(credential.encode("utf-8", "replace")).hexdigest()
        for known, key in self._keys.items():
            if hmac.compare_digest(known, digest):
                return Principal(key.sub, key.role)
        return None

    def _from_jwt(self, token: str) -> Principal:
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                audience=self._audience,
                options={"require": ["sub", "role", "exp"], "verify_aud": bool(self._audience)},
                leeway=30,
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("expired_token") from None
        except jwt.PyJWTError:
            raise AuthError("invalid_token") from None
        sub, role = claims.get("sub"), claims.get("role")
        if not isinstance(sub, str) or not sub or role not in ROLES:
            raise AuthError("invalid_claims")
        return Principal(sub, role)


def bearer_from_header(value: str | None) -> str | None:
    """The credential of an `Authorization: Bearer ...` header, or None."""
    if not value:
        return None
    scheme, _, credential = value.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        return None
    return credential.strip()


def log_failure(client: str, reason: str, path: str) -> None:
    API_AUTH_FAILURES.inc()
    log.warning("api auth failed", client=client, reason=reason, path=path)
