"""Authentication of desktops: JWT and API keys, roles, and the brake on failed attempts."""

from __future__ import annotations

import structlog

from masker.api.auth import FailureLimiter
from tests.support.api import AGENT_KEY, SUPERVISOR_KEY, http, make_jwt, running_api

API_OPTIONS = {"auth_failures": 1000}


def calls(api, token=None, headers=None):
    return http("GET", f"{api.url}/api/calls", token, headers=headers)


def test_signed_agent_jwt_is_accepted(api):
    assert calls(api, make_jwt("agent-1")).status == 200


def test_missing_credential_is_401_with_challenge(api):
    reply = calls(api)
    assert reply.status == 401 and reply.headers["WWW-Authenticate"].startswith("Bearer")


def test_jwt_signed_with_another_key_is_rejected(api):
    reply = calls(api, make_jwt(secret=b"not-the-configured-key-0123456789abcdef"))
    assert reply.status == 401 and reply.json()["error"]["code"] == "invalid_token"


def test_expired_jwt_is_rejected(api):
    reply = calls(api, make_jwt(ttl=-120))
    assert reply.status == 401 and reply.json()["error"]["code"] == "expired_token"


def test_jwt_with_unknown_role_is_rejected(api):
    assert calls(api, make_jwt(role="payment")).status == 401


def test_jwt_without_expiry_is_rejected(api):
    import jwt

    from tests.support.api import SECRET

    token = jwt.encode({"sub": "agent-1", "role": "agent"}, SECRET, algorithm="HS256")
    assert calls(api, token).status == 401


def test_unsigned_jwt_is_rejected(api):
    import jwt

    token = jwt.encode(
        {"sub": "agent-1", "role": "supervisor", "exp": 9999999999}, None, algorithm="none"
    )
    assert calls(api, token).status == 401


def test_agent_api_key_is_accepted(api):
    assert calls(api, AGENT_KEY).status == 200


def test_supervisor_api_key_sees_other_agents_calls(api):
    cid = api.call("agent-9")
    ids = {c["id"] for c in calls(api, SUPERVISOR_KEY).json()["calls"]}
    assert cid in ids


def test_non_bearer_scheme_is_rejected(api):
    assert calls(api, headers={"Authorization": f"Basic {AGENT_KEY}"}).status == 401


def test_failed_authentication_log_never_holds_the_presented_token(api):
    secret_attempt = "guess-" + "x" * 30
    with structlog.testing.capture_logs() as logs:
        calls(api, secret_attempt)
    failures = [e for e in logs if e.get("event") == "api auth failed"]
    assert failures and failures[0]["reason"] == "invalid_credential"
    assert secret_attempt not in repr(logs)


def test_repeated_failures_from_one_address_are_rate_limited():
    with running_api(auth_failures=3, auth_window_s=60) as api:
        statuses = [calls(api, f"wrong-{i}").status for i in range(4)]
        blocked = calls(api, "wrong-again")
    assert statuses == [401, 401, 401, 429]
    assert blocked.status == 429 and int(blocked.headers["Retry-After"]) > 0


def test_failure_window_slides_so_the_address_recovers():
    now = [0.0]
    limiter = FailureLimiter(limit=2, window_s=10, clock=lambda: now[0])
    limiter.record_failure("10.0.0.1")
    limiter.record_failure("10.0.0.1")
    assert limiter.blocked("10.0.0.1") > 0
    now[0] = 11.0
    assert limiter.blocked("10.0.0.1") == 0


def test_limiter_counts_addresses_separately():
    limiter = FailureLimiter(limit=1, window_s=10, clock=lambda: 0.0)
    limiter.record_failure("10.0.0.1")
    assert limiter.blocked("10.0.0.2") == 0
