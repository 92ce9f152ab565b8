"""The /desktop page is served with headers that allow embedding only where configured."""

from __future__ import annotations

import re

import pytest

from tests.support.api import http

API_OPTIONS = {"frame_ancestors": ("'self'", "https://crm.example.com")}


def test_desktop_page_is_html(api):
    reply = http("GET", f"{api.url}/desktop")
    assert reply.status == 200 and reply.headers["Content-Type"].startswith("text/html")
    assert b"Take payment" in reply.body


def test_desktop_may_be_framed_by_configured_origins_only(api):
    reply = http("GET", f"{api.url}/desktop")
    csp = reply.headers["Content-Security-Policy"]
    assert "frame-ancestors 'self' https://crm.example.com" in csp
    assert "X-Frame-Options" not in reply.headers


def test_desktop_loads_nothing_from_other_origins(api):
    html = http("GET", f"{api.url}/desktop").body.decode()
    urls = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert urls and all(u.startswith("/desktop/static/") for u in urls)
    csp = http("GET", f"{api.url}/desktop").headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp


@pytest.mark.parametrize("asset,kind", [("desktop.js", "javascript"), ("desktop.css", "css")])
def test_static_assets_are_served(api, asset, kind):
    reply = http("GET", f"{api.url}/desktop/static/{asset}")
    assert reply.status == 200 and kind in reply.headers["Content-Type"]


def test_static_path_traversal_is_refused(api):
    reply = http("GET", f"{api.url}/desktop/static/..%2f..%2fapi%2f__init__.py")
    assert reply.status in (403, 404)


def test_root_redirects_to_the_desktop(api):
    reply = http("GET", f"{api.url}/")
    assert reply.status == 200 and b"Take payment" in reply.body
