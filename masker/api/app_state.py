"""Shared state of one API app (typed aiohttp app keys) and the auth gate every route uses."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aiohttp import web

from masker.api.auth import (
    Authenticator,
    AuthError,
    FailureLimiter,
    Principal,
    bearer_from_header,
    log_failure,
)
from masker.api.call_registry import CallRegistry, error_for
from masker.api.proxies import Network, client_address, parse_networks
from masker.api.settings import ApiConfig
from masker.api.views import as_mapping
from masker.errors import ApiError

T = TypeVar("T")


@dataclass
class ApiState:
    registry: CallRegistry
    config: ApiConfig
    authenticator: Authenticator
    limiter: FailureLimiter
    ready_checks: Mapping[str, Callable[[], Any]] = field(default_factory=dict)
    proxies: tuple[Network, ...] = field(init=False)

    def __post_init__(self) -> None:
        self.proxies = parse_networks(self.config.trusted_proxies)


STATE = web.AppKey("masker_api_state", ApiState)


def state(request: web.Request) -> ApiState:
    return request.app[STATE]


def client_of(request: web.Request) -> str:
    """The client's address (behind a trusted reverse proxy: the one it names)."""
    return client_address(
        request.remote or "unknown",
        request.headers.getall("X-Forwarded-For", []),
        state(request).proxies,
    )


def check_credential(request: web.Request, credential: str | None) -> Principal:
    """The principal for `credential`, or ApiError 401/429 (failure counted and logged).

    The credential is checked first: a valid one is accepted whatever the failure
    limiter holds (agents behind one NAT are not locked out by a neighbour).  A failed
    one is counted against itself and against the client address; once either has
    failed `auth_failures` times in `auth_window_s` the answer is 429, not 401.
    """
    st = state(request)
    client = client_of(request)
    if credential is None:
        raise ApiError(
            401,
            "unauthenticated",
            "a bearer credential is required",
            {"WWW-Authenticate": 'Bearer realm="masker"'},
        )
    try:
        return st.authenticator.authenticate(credential)
    except AuthError as exc:
        wait = st.limiter.blocked(client, credential)  # the allowed failures get 401
        st.limiter.record_failure(client, credential)
        log_failure(client, exc.reason, request.path, blocked=wait > 0)
        if wait > 0:
            raise ApiError(
                429,
                "too_many_failures",
                "too many failed authentications; try again later",
                {"Retry-After": str(int(wait) + 1)},
            ) from None
        raise ApiError(
            401,
            exc.reason,
            "the credential was not accepted",
            {"WWW-Authenticate": 'Bearer realm="masker", error="invalid_token"'},
        ) from None


def authenticated(request: web.Request, *, api: bool = True) -> Principal:
    """The request's principal. `api` routes (calls, captures, feeds) refuse the
    `metrics` role, which may read /metrics and nothing else."""
    header = request.headers.get("Authorization")
    credential = bearer_from_header(header)
    if header and credential is None:
        credential = ""  # a malformed header is a failed attempt, not a missing one
    principal = check_credential(request, credential)
    if api and principal.role == "metrics":
        raise ApiError(403, "forbidden", "this credential may read /metrics only")
    return principal


async def in_thread(fn: Callable[..., T], *args: Any) -> T:
    """Run a registry call off the event loop (it may take the SIP side's lock)."""
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args))


async def registry_call(fn: Callable[..., T], *args: Any) -> T:
    """Call the registry, mapping its errors to 4xx ApiErrors."""
    try:
        return await in_thread(fn, *args)
    except Exception as exc:
        mapped = error_for(exc)
        if mapped is None:
            raise
        status, code = mapped
        messages = {
            "call_ended": "the call has ended",
            "capture_conflict": "a capture is already running, or none is running",
            "unknown_call": "no such call",
            "invalid_request": "the registry refused the request",
        }
        raise ApiError(status, code, messages[code]) from None


async def visible_call(request: web.Request, principal: Principal) -> Mapping[str, Any]:
    """The call named in the path if this principal may see it, else 404."""
    call_id = request.match_info["call_id"]
    call = as_mapping(await registry_call(state(request).registry.get_call, call_id))
    agent = call.get("agent", call.get("agent_id"))
    if not principal.may_see(agent):
        raise ApiError(404, "unknown_call", "no such call")
    return call
