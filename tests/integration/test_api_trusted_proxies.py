"""Behind the cluster's nginx every request comes from the proxy: failed logins are
still counted per desktop, from the X-Forwarded-For of a trusted proxy only."""

from __future__ import annotations

from tests.support.api import http

API_OPTIONS = {"trusted_proxies": ("127.0.0.1",), "auth_failures": 2}


def bad_login(api, n, forwarded_for):
    return http(
        "GET",
        f"{api.url}/api/calls",
        f"wrong-key-{n}",
        headers={"X-Forwarded-For": forwarded_for},
    ).status


def test_failed_logins_behind_a_trusted_proxy_count_per_desktop(api):
    assert [bad_login(api, n, "203.0.113.1") for n in range(3)] == [401, 401, 429]
    assert bad_login(api, 3, "203.0.113.2") == 401  # another desktop is not blocked
