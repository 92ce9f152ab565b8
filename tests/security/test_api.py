"""Issue 13, agent-desktop API: /metrics behind a credential; failed-attempt limits that
never lock a valid credential out; strict JWTs (secret length, audience, lifetime); feeds
closed at token expiry; WebSockets authenticated before they count, with caps."""

from __future__ import annotations

import asyncio
import time

import aiohttp
import jwt
import pytest

from masker.api import ApiConfig, ApiKey
from masker.api.auth import Authenticator, AuthError, FailureLimiter
from masker.errors import UserError
from tests.support.api import (
    AGENT_KEY,
    AUDIENCE,
    SECRET,
    SUPERVISOR_KEY,
    http,
    make_jwt,
    running_api,
    ws_collect,
)

API_OPTIONS = {"auth_failures": 1000}

METRICS_KEY = "metrics-scraper-key-for-tests-only-5be1"


def calls(api, token):
    return http("GET", f"{api.url}/api/calls", token)


def feed_url(api, cid):
    return api.url.replace("http://", "ws://") + f"/api/calls/{cid}/feed"


# --- /metrics -------------------------------------------------------------------------------


def test_metrics_refuse_an_anonymous_scrape(api):
    reply = http("GET", f"{api.url}/metrics")
    assert reply.status == 401 and b"masker_digits_masked" not in reply.body


def test_metrics_refuse_an_agent_credential(api):
    assert http("GET", f"{api.url}/metrics", make_jwt("agent-1")).status == 403


def test_metrics_serve_a_supervisor(api):
    reply = http("GET", f"{api.url}/metrics", SUPERVISOR_KEY)
    assert reply.status == 200 and b"masker_digits_masked" in reply.body


def test_a_metrics_key_reads_metrics_and_nothing_else():
    with running_api(api_keys=(ApiKey.from_clear(METRICS_KEY, "prometheus", "metrics"),)) as api:
        scraped = http("GET", f"{api.url}/metrics", METRICS_KEY).status
        cid = api.call("prometheus")  # even a call bound to its name
        listed = calls(api, METRICS_KEY).status
        one = http("GET", f"{api.url}/api/calls/{cid}", METRICS_KEY).status
    assert (scraped, listed, one) == (200, 403, 403)


def test_metrics_public_opens_metrics_explicitly():
    with running_api(metrics_public=True) as api:
        assert http("GET", f"{api.url}/metrics").status == 200


def test_metrics_public_is_read_from_the_environment_string():
    assert ApiConfig.from_mapping({"metrics_public": "true"}).metrics_public is True
    assert ApiConfig.from_mapping({}).metrics_public is False


# --- failed attempts --------------------------------------------------------------------------


def test_a_valid_credential_is_not_locked_out_by_a_neighbours_failures():
    # agents behind one NAT share an address: one bad client must not lock them all out
    with running_api(auth_failures=3, auth_window_s=60) as api:
        neighbour = [calls(api, f"wrong-{i}").status for i in range(5)]
        valid_jwt, valid_key = calls(api, make_jwt("agent-1")).status, calls(api, AGENT_KEY).status
    assert neighbour[-1] == 429
    assert (valid_jwt, valid_key) == (200, 200)


def test_one_bad_credential_is_limited_from_any_address():
    limiter = FailureLimiter(limit=3, window_s=60, clock=lambda: 0.0)
    for i in range(3):
        limiter.record_failure(f"10.0.0.{i}", "replayed-expired-token")
    assert limiter.blocked("10.9.9.9", "replayed-expired-token") > 0
    assert limiter.blocked("10.9.9.9", "another-credential") == 0


def test_failure_tables_stay_bounded_under_a_spray():
    limiter = FailureLimiter(limit=5, window_s=60, clock=lambda: 0.0, capacity=1000)
    for i in range(20_000):
        limiter.record_failure(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", f"guess-{i}")
    assert len(limiter) <= 2 * 1000


def test_ipv6_addresses_of_one_64_count_as_one_client():
    limiter = FailureLimiter(limit=2, window_s=60, clock=lambda: 0.0)
    limiter.record_failure("2001:db8:1:2::1")
    limiter.record_failure("2001:db8:1:2:ffff::9")
    assert limiter.blocked("2001:db8:1:2::77") > 0 and limiter.blocked("2001:db8:1:3::1") == 0


def test_the_failure_table_never_holds_the_presented_credential():
    limiter = FailureLimiter(limit=2, window_s=60)
    limiter.record_failure("10.0.0.1", "secret-guess-0123456789")
    assert "secret-guess" not in repr(vars(limiter))


# --- JWTs ---------------------------------------------------------------------------------------


def test_a_jwt_secret_shorter_than_32_bytes_is_a_config_error():
    with pytest.raises(UserError, match="32 bytes"):
        ApiConfig(jwt_secret=b"x" * 31, jwt_audience="masker")


def test_a_jwt_secret_without_an_audience_is_a_config_error():
    with pytest.raises(UserError, match="jwt_audience"):
        ApiConfig(jwt_secret=b"x" * 32)


def test_a_short_secret_file_is_refused_at_load(tmp_path):
    (tmp_path / "jwt.key").write_text("short-secret\n")
    with pytest.raises(UserError):
        ApiConfig.from_mapping(
            {"jwt_secret_file": str(tmp_path / "jwt.key"), "jwt_audience": "masker"}
        )


@pytest.mark.parametrize(
    "claims",
    [
        {"aud": None},
        {"aud": "another-service"},
        {"aud": ["x", "y"]},
    ],
    ids=["no-aud", "wrong-aud", "aud-list-without-us"],
)
def test_a_jwt_not_addressed_to_this_service_is_refused(api, claims):
    assert calls(api, make_jwt("agent-1", **claims)).status == 401


def test_a_jwt_without_iat_is_refused(api):
    assert calls(api, make_jwt("agent-1", iat=None)).status == 401


def test_a_jwt_living_longer_than_the_cap_is_refused(api):
    now = int(time.time())
    token = jwt.encode(
        {
            "sub": "agent-1",
            "role": "agent",
            "aud": AUDIENCE,
            "iat": now,
            "exp": now + 12 * 3600 + 60,
        },
        SECRET,
        algorithm="HS256",
    )
    reply = calls(api, token)
    assert reply.status == 401 and reply.json()["error"]["code"] == "lifetime_too_long"


def test_a_jwt_within_the_lifetime_cap_is_accepted(api):
    assert calls(api, make_jwt("agent-1", ttl=12 * 3600)).status == 200


def test_the_lifetime_cap_is_configurable():
    auth = Authenticator(
        ApiConfig(jwt_secret=SECRET, jwt_audience=AUDIENCE, jwt_max_lifetime_s=300)
    )
    with pytest.raises(AuthError, match="lifetime_too_long"):
        auth.authenticate(make_jwt("agent-1", ttl=600))


def test_a_jwt_issued_in_the_future_is_refused(api):
    now = int(time.time())
    token = jwt.encode(
        {"sub": "agent-1", "role": "agent", "aud": AUDIENCE, "iat": now + 3600, "exp": now + 3900},
        SECRET,
        algorithm="HS256",
    )
    assert calls(api, token).status == 401


# --- feeds ----------------------------------------------------------------------------------------


def test_an_open_feed_is_closed_when_its_token_expires(api):
    cid = api.call()
    started = time.monotonic()
    msgs = asyncio.run(
        ws_collect(
            feed_url(api, cid),
            make_jwt("agent-1", ttl=2),
            lambda m: any("closed" in x for x in m),
            timeout=10,
        )
    )
    assert msgs[0]["type"] == "state"
    assert msgs[-2]["error"]["code"] == "token_expired" and msgs[-1] == {"closed": 4001}
    assert time.monotonic() - started < 6


def test_an_sse_stream_ends_when_its_token_expires(api):
    import urllib.request

    cid = api.call()
    req = urllib.request.Request(
        f"{api.url}/api/calls/{cid}/events", headers={"Authorization": f"Bearer {make_jwt(ttl=2)}"}
    )
    started = time.monotonic()
    with urllib.request.urlopen(req, timeout=10) as resp:
        body = resp.read().decode()  # returns when the server ends the stream
    assert "token_expired" in body and time.monotonic() - started < 6


async def _silent_sockets(url: str, n: int) -> list[int | str]:
    """Open `n` WebSockets that never authenticate; the handshake status of each."""
    results: list[int | str] = []
    async with aiohttp.ClientSession() as session:
        held = []
        for _ in range(n):
            try:
                held.append(await session.ws_connect(url))
                results.append(101)
            except aiohttp.WSServerHandshakeError as exc:
                results.append(exc.status)
        for ws in held:
            await ws.close()
    return results


def test_unauthenticated_websockets_per_address_are_capped_before_the_upgrade():
    with running_api(ws_pending_per_address=2, ws_auth_timeout_s=3.0) as api:
        statuses = asyncio.run(_silent_sockets(feed_url(api, api.call()), 3))
    assert statuses == [101, 101, 429]


async def _feeds(url: str, token: str, n: int, header: bool = False) -> list[object]:
    """Open `n` feeds with one credential and keep them open; what each got first."""
    outcomes: list[object] = []
    async with aiohttp.ClientSession() as session:
        held = []
        for _ in range(n):
            headers = {"Authorization": f"Bearer {token}"} if header else None
            try:
                ws = await session.ws_connect(url, headers=headers)
            except aiohttp.WSServerHandshakeError as exc:
                outcomes.append(exc.status)
                continue
            held.append(ws)
            if not header:
                await ws.send_json({"type": "auth", "token": token})
            msg = await ws.receive(timeout=5)
            outcomes.append(
                "state"
                if msg.type == aiohttp.WSMsgType.TEXT and '"state"' in msg.data
                else ws.close_code or msg.type
            )
            if msg.type == aiohttp.WSMsgType.TEXT and '"error"' in msg.data:
                await ws.receive(timeout=5)
                outcomes[-1] = ws.close_code
        for ws in held:
            await ws.close()
    return outcomes


def test_feeds_per_credential_are_capped_after_auth_message():
    with running_api(ws_feeds_per_principal=2) as api:
        outcomes = asyncio.run(_feeds(feed_url(api, api.call()), make_jwt("agent-1"), 3))
    assert outcomes == ["state", "state", 4429]


def test_feeds_per_credential_are_capped_before_the_upgrade_with_a_header():
    with running_api(ws_feeds_per_principal=2) as api:
        outcomes = asyncio.run(
            _feeds(feed_url(api, api.call()), make_jwt("agent-1"), 3, header=True)
        )
    assert outcomes == ["state", "state", 429]


def test_feeds_per_address_are_capped_across_credentials():
    with running_api(ws_feeds_per_address=2) as api:
        outcomes = asyncio.run(_two_held_then_one(feed_url(api, api.call())))
    assert outcomes == [4429]


async def _two_held_then_one(url: str) -> list[object]:
    async with aiohttp.ClientSession() as session:
        held = []
        for key in (SUPERVISOR_KEY, AGENT_KEY):
            ws = await session.ws_connect(url)
            await ws.send_json({"type": "auth", "token": key})
            await ws.receive(timeout=5)
            held.append(ws)
        third = await _feeds(url, make_jwt("agent-1"), 1)
        for ws in held:
            await ws.close()
    return third


def test_a_socket_waiting_for_auth_does_not_count_toward_the_credentials_cap():
    async def run(url: str) -> list[object]:
        async with aiohttp.ClientSession() as session:
            silent = await session.ws_connect(url)  # connected, never authenticates
            got = await _feeds(url, make_jwt("agent-1"), 1)
            await silent.close()
        return got

    with running_api(ws_feeds_per_principal=1) as api:
        assert asyncio.run(run(feed_url(api, api.call()))) == ["state"]


def test_a_header_credential_that_fails_is_refused_before_the_upgrade(api):
    async def run() -> int:
        async with aiohttp.ClientSession() as session:
            try:
                await session.ws_connect(
                    feed_url(api, api.call()), headers={"Authorization": "Bearer wrong"}
                )
            except aiohttp.WSServerHandshakeError as exc:
                return exc.status
        return 101

    assert asyncio.run(run()) == 401


def test_a_metrics_key_cannot_open_a_feed():
    with running_api(api_keys=(ApiKey.from_clear(METRICS_KEY, "agent-1", "metrics"),)) as api:
        msgs = asyncio.run(
            ws_collect(
                feed_url(api, api.call("agent-1")),
                METRICS_KEY,
                lambda m: any("closed" in x for x in m),
            )
        )
    assert msgs[-1] == {"closed": 4403}
