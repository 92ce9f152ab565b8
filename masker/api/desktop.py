"""The agent payment panel: static HTML/CSS/JS plus the headers that let it be embedded safely.

No X-Frame-Options: embedding is governed by the CSP `frame-ancestors` list
from config, so a contact centre can put the panel in its agent desktop's
iframe while every other site is refused.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from masker.api.app_state import state

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"


def content_security_policy(frame_ancestors: tuple[str, ...]) -> str:
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            f"frame-ancestors {' '.join(frame_ancestors) or chr(39) + 'none' + chr(39)}",
        ]
    )


async def desktop_page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "desktop.html")


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare hook: hardening headers on every response."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    if request.path.startswith("/api/"):
        headers.setdefault("Cache-Control", "no-store")
    if request.path.startswith("/desktop"):
        headers["Content-Security-Policy"] = content_security_policy(
            state(request).config.frame_ancestors
        )
        headers.setdefault("Cache-Control", "no-cache")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/desktop", desktop_page)
    app.router.add_static("/desktop/static", STATIC_DIR, append_version=False)
    app.on_response_prepare.append(security_headers)
