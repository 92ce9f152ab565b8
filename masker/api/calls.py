"""REST handlers: list calls, read one, start/restart/cancel/read its payment capture,
retry a failed gateway hand-off, end the payment phase (disarm a `capture`-policy call)."""

from __future__ import annotations

from typing import Any

import structlog
from aiohttp import web

from masker.api.app_state import authenticated, registry_call, state, visible_call
from masker.api.auth import Principal
from masker.api.requests import json_body, parse_capture, parse_restart
from masker.api.views import as_mapping, public_call, public_capture
from masker.errors import ApiError

log = structlog.get_logger()


async def _controlled_call(request: web.Request, principal: Principal) -> str:
    """The id of the request's call once `principal` may drive its capture: 403 for a
    supervisor, 404 for a call the agent cannot see."""
    if principal.is_supervisor:
        raise ApiError(403, "forbidden", "supervisors can follow a capture but not drive it")
    await visible_call(request, principal)
    return request.match_info["call_id"]


def _audit(principal: Principal, action: str, call_id: str) -> None:
    """One log line per capture-control action: who did what on which call (PCI DSS 10.2);
    never a card value (the request bodies hold none: amount, currency, reference)."""
    log.info("agent action", action=action, call=call_id, agent=principal.sub, role=principal.role)


async def _envelope(request: web.Request, call_id: str, status: Any) -> dict[str, Any]:
    """The capture status to return: what the registry returned, else the call's current one."""
    if status is None or isinstance(status, bool):
        call = as_mapping(await registry_call(state(request).registry.get_call, call_id))
        status = call.get("capture")
    return {"call_id": call_id, "capture": public_capture(status)}


async def list_calls(request: web.Request) -> web.Response:
    principal = authenticated(request)
    calls = await registry_call(state(request).registry.list_calls)
    visible = [public_call(c) for c in calls]
    visible = [c for c in visible if principal.may_see(c["agent"])]
    return web.json_response({"calls": visible})


async def get_call(request: web.Request) -> web.Response:
    principal = authenticated(request)
    return web.json_response(public_call(await visible_call(request, principal)))


async def get_capture(request: web.Request) -> web.Response:
    principal = authenticated(request)
    call = await visible_call(request, principal)
    return web.json_response(
        {"call_id": request.match_info["call_id"], "capture": public_capture(call.get("capture"))}
    )


async def start_capture(request: web.Request) -> web.Response:
    principal = authenticated(request)
    body = parse_capture(await json_body(request))
    call_id = await _controlled_call(request, principal)
    status = await registry_call(
        state(request).registry.start_capture,
        call_id,
        body.amount,
        body.currency,
        body.reference,
        list(body.fields),
    )
    _audit(principal, "start_capture", call_id)
    return web.json_response(await _envelope(request, call_id, status), status=201)


async def restart_field(request: web.Request) -> web.Response:
    principal = authenticated(request)
    field = parse_restart(await json_body(request))
    call_id = await _controlled_call(request, principal)
    status = await registry_call(state(request).registry.restart_field, call_id, field)
    _audit(principal, "restart_field", call_id)
    return web.json_response(await _envelope(request, call_id, status))


async def cancel_capture(request: web.Request) -> web.Response:
    principal = authenticated(request)
    call_id = await _controlled_call(request, principal)
    status = await registry_call(state(request).registry.cancel_capture, call_id)
    _audit(principal, "cancel_capture", call_id)
    return web.json_response(await _envelope(request, call_id, status))


async def retry_handoff(request: web.Request) -> web.Response:
    principal = authenticated(request)
    call_id = await _controlled_call(request, principal)
    registry = state(request).registry
    if not callable(getattr(registry, "retry_handoff", None)):
        raise ApiError(409, "capture_conflict", "this service cannot retry a hand-off")
    status = await registry_call(registry.retry_handoff, call_id)
    _audit(principal, "retry_handoff", call_id)
    return web.json_response(await _envelope(request, call_id, status), status=202)


async def end_payment_phase(request: web.Request) -> web.Response:
    """The agent ends the payment phase: masking stops until the next capture. Only the
    call's agent may; the registry refuses while the caller is keying a capture."""
    principal = authenticated(request)
    call_id = await _controlled_call(request, principal)
    registry = state(request).registry
    if not callable(getattr(registry, "end_payment_phase", None)):
        raise ApiError(409, "capture_conflict", "this service cannot end a payment phase")
    try:
        call = await registry_call(registry.end_payment_phase, call_id, principal.sub)
    except ApiError as exc:
        log.info(
            "payment phase end refused",
            call=call_id,
            agent=principal.sub,
            role=principal.role,
            code=exc.code,
        )
        if exc.code == "capture_conflict":
            raise ApiError(
                409,
                "capture_conflict",
                "a capture is collecting digits (cancel it first), or this call is always masked",
            ) from None
        raise
    _audit(principal, "end_payment_phase", call_id)
    return web.json_response(public_call(call))


def add_routes(app: web.Application) -> None:
    app.router.add_get("/api/calls", list_calls)
    app.router.add_get("/api/calls/{call_id}", get_call)
    app.router.add_get("/api/calls/{call_id}/capture", get_capture)
    app.router.add_post("/api/calls/{call_id}/capture", start_capture)
    app.router.add_delete("/api/calls/{call_id}/capture", cancel_capture)
    app.router.add_post("/api/calls/{call_id}/capture/restart", restart_field)
    app.router.add_post("/api/calls/{call_id}/capture/retry", retry_handoff)
    app.router.add_post("/api/calls/{call_id}/payment/end", end_payment_phase)
