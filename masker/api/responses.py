"""Every failure the API reports is a small JSON body with a stable code, never a 500 page."""

from __future__ import annotations

from collections.abc import Mapping

import structlog
from aiohttp import web
from aiohttp.typedefs import Handler

from masker.errors import ApiError

log = structlog.get_logger()


def error_response(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> web.Response:
    return web.json_response(
        {"error": {"code": code, "message": message}}, status=status, headers=headers
    )


_HTTP_CODES = {
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    400: "bad_request",
}


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Turn ApiError and aiohttp's own HTTP errors into JSON; log anything unexpected."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code = _HTTP_CODES.get(exc.status, "http_error")
        headers = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error_response(exc.status, code, exc.reason, headers)
    except Exception:
        # A bug: say nothing specific (the exception text could hold anything).
        log.exception("api handler failed", path=request.path, method=request.method)
        return error_response(500, "internal_error", "internal error")
