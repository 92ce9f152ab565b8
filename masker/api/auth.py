"""Who is calling: bearer JWT (HS256) or static API key, and a brake on failures
(per presented credential and per client address).

The presented credential is never logged or echoed; failures are logged with
the client address and a reason code only.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import math
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field

import jwt
import structlog

from masker.api.settings import METRICS_ROLES, ROLES, ApiConfig
from masker.runtime.metrics import API_AUTH_FAILURES

log = structlog.get_logger()
LEEWAY_S = 30


@dataclass(frozen=True)
class Principal:
    """An authenticated desktop: the agent id (`sub`) and its role."""

    sub: str
    role: str
    # when the credential stops being valid (a JWT's `exp`, epoch seconds); None for
    # API keys. Open feeds are closed then.
    expires_at: float | None = field(default=None, compare=False)

    @property
    def is_supervisor(self) -> bool:
        return self.role == "supervisor"

    @property
    def may_read_metrics(self) -> bool:
        return self.role in METRICS_ROLES

    def may_see(self, agent_id: str | None) -> bool:
        """Agents see only the calls bound to them; supervisors see every call, and so
        does the generated development key (role `developer`, masker/runtime/devaccess.py), which
        no JWT and no configured key can claim."""
        if self.is_supervisor or self.role == "developer":
            return True
        if self.role == "metrics":
            return False
        return agent_id is not None and agent_id == self.sub


class AuthError(Exception):
    """Authentication failed; `reason` is a short code safe to log and return."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class FailureLimiter:
    """Sliding-window counts of failed authentications, per presented credential and per
    client address, in two tables of at most `capacity` entries each (least recently
    failed evicted first).

    Only failures are counted, and they are counted after the credential was checked:
    a valid credential is accepted whatever this limiter holds, so agents sharing one
    address (a contact centre's NAT) are never locked out by a neighbour's failures.
    What it limits is the failing party: the same bad credential (a desktop replaying
    an expired token) and the same address (a guesser) get 429 once they have failed
    `limit` times within `window_s`.  Credentials are kept as a truncated SHA-256,
    never in clear; IPv6 addresses are counted per /64 (one host owns a whole /64).
    """

    def __init__(
        self,
        limit: int,
        window_s: float,
        clock: Callable[[], float] = time.monotonic,
        capacity: int = 10_000,
    ):
        self._limit = limit
        self._window = window_s
        self._clock = clock
        self._capacity = capacity
        self._by_address: OrderedDict[str, deque[float]] = OrderedDict()
        self._by_credential: OrderedDict[str, deque[float]] = OrderedDict()

    @staticmethod
    def address_key(client: str) -> str:
        try:
            ip = ipaddress.ip_address(client)
        except ValueError:
            return client[:64]
        if isinstance(ip, ipaddress.IPv6Address):
            if ip.ipv4_mapped is not None:
                return str(ip.ipv4_mapped)
            return str(ipaddress.IPv6Network((ip, 64), strict=False))
        return str(ip)

    @staticmethod
    def credential_key(credential: str) -> str:
        return hashlib.sha256(credential.encode("utf-8", "replace")).hexdigest()[:32]

    def __len__(self) -> int:
        """Entries held (both tables): never more than twice the capacity."""
        return len(self._by_address) + len(self._by_credential)

    def _wait(self, table: OrderedDict[str, deque[float]], key: str) -> float:
        stamps = table.get(key)
        if stamps is None:
            return 0.0
        age = self._clock() - stamps[0]
        if age > self._window:
            while stamps and self._clock() - stamps[0] > self._window:
                stamps.popleft()
            if not stamps:
                del table[key]
                return 0.0
            age = self._clock() - stamps[0]
        if len(stamps) < self._limit:
            return 0.0
        return max(0.0, self._window - age)

    def blocked(self, client: str, credential: str | None = None) -> float:
        """Seconds until this address (and this credential, if given) may fail again
        without a 429 (0 when neither is blocked)."""
        wait = self._wait(self._by_address, self.address_key(client))
        if credential is not None:
            wait = max(wait, self._wait(self._by_credential, self.credential_key(credential)))
        return wait

    def _record(self, table: OrderedDict[str, deque[float]], key: str) -> None:
        stamps = table.get(key)
        if stamps is None:
            stamps = table[key] = deque(maxlen=self._limit)
            while len(table) > self._capacity:
                table.popitem(last=False)
        else:
            table.move_to_end(key)
        stamps.append(self._clock())

    def record_failure(self, client: str, credential: str | None = None) -> None:
        self._record(self._by_address, self.address_key(client))
        if credential is not None:
            self._record(self._by_credential, self.credential_key(credential))


class Authenticator:
    """Turns a bearer credential into a Principal, or raises AuthError."""

    def __init__(self, config: ApiConfig):
        self._secret = config.jwt_secret
        self._audience = config.jwt_audience
        self._max_lifetime = config.jwt_max_lifetime_s
        self._keys = {k.sha256: k for k in config.api_keys}

    def authenticate(self, credential: str) -> Principal:
        principal = self._from_api_key(credential)
        if principal is not None:
            return principal
        secret = self._secret
        if credential.count(".") == 2 and secret:
            return self._from_jwt(credential, secret)
        raise AuthError("invalid_credential")

    def _from_api_key(self, credential: str) -> Principal | None:
        digest = hashlib.sha256(credential.encode("utf-8", "replace")).hexdigest()
        for known, key in self._keys.items():
            if hmac.compare_digest(known, digest):
                return Principal(key.sub, key.role)
        return None

    def _from_jwt(self, token: str, secret: bytes) -> Principal:
        try:
            claims = jwt.decode(
                token,
                secret,
                algorithms=["HS256"],
                audience=self._audience,
                options={
                    "require": ["sub", "role", "aud", "iat", "exp"],
                    "verify_aud": True,
                    "verify_iat": True,
                    "verify_exp": True,
                },
                leeway=LEEWAY_S,
            )
        except jwt.ExpiredSignatureError:
            raise AuthError("expired_token") from None
        except (jwt.MissingRequiredClaimError, jwt.InvalidAudienceError) as exc:
            missing_aud = isinstance(exc, jwt.MissingRequiredClaimError) and exc.claim == "aud"
            raise AuthError(
                "invalid_audience"
                if missing_aud or isinstance(exc, jwt.InvalidAudienceError)
                else "invalid_claims"
            ) from None
        except (jwt.PyJWTError, ValueError, OverflowError, TypeError):  # also inf/NaN claims
            raise AuthError("invalid_token") from None
        sub, role = claims.get("sub"), claims.get("role")
        if not isinstance(sub, str) or not sub or role not in ROLES:
            raise AuthError("invalid_claims")
        iat, exp = claims["iat"], claims["exp"]
        if not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in (iat, exp)
        ):
            raise AuthError("invalid_claims")
        if iat > time.time() + LEEWAY_S:
            raise AuthError("invalid_claims")  # issued in the future
        if exp - iat > self._max_lifetime:
            raise AuthError("lifetime_too_long")
        return Principal(sub, role, float(exp))


def bearer_from_header(value: str | None) -> str | None:
    """The credential of an `Authorization: Bearer ...` header, or None."""
    if not value:
        return None
    scheme, _, credential = value.partition(" ")
    if scheme.lower() != "bearer" or not credential.strip():
        return None
    return credential.strip()


def log_failure(client: str, reason: str, path: str, blocked: bool = False) -> None:
    API_AUTH_FAILURES.inc()
    log.warning("api auth failed", client=client, reason=reason, path=path, blocked=blocked)
