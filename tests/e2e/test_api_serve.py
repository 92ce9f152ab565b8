"""The desktop API inside the real `masker serve`, with pjsua2 phones placing real calls:
calls are bound to the agent named by the PBX leg, health and metrics are served."""

from __future__ import annotations

import pytest

from tests.support.api import AUDIENCE, http, make_jwt
from tests.support.e2e import start_rig, stop_rig

pytestmark = pytest.mark.e2e

SECRET = b"serve-api-jwt-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("api-serve")
    (folder / "jwt.key").write_bytes(SECRET)
    # ServiceProcess ends its TOML with the [api] table: this line lands in it.
    rig = start_rig(
        folder,
        extra_toml=f'jwt_secret_file = "{folder / "jwt.key"}"\njwt_audience = "{AUDIENCE}"\n',
    )
    yield rig
    stop_rig(rig)


def live_calls(service, token: str) -> list[dict]:
    reply = http("GET", f"{service.api_url}/api/calls", token)
    assert reply.status == 200
    return [c for c in reply.json()["calls"] if c["state"] != "ended"]


def test_call_is_bound_to_the_request_uri_user_of_the_agent_leg(served):
    c, a = served.connect(user="2001")
    try:
        mine = live_calls(served.service, make_jwt("2001", secret=SECRET))
        others = live_calls(served.service, make_jwt("2002", secret=SECRET))
    finally:
        served.hang_up(c, a)
    assert [x["agent"] for x in mine] == ["2001"] and others == []


def test_agent_id_header_from_the_caller_does_not_choose_the_agent(served):
    c, a = served.connect(user="2001", headers={"X-Agent-Id": "agent-77"})
    try:
        picked = live_calls(served.service, make_jwt("agent-77", secret=SECRET))
        bound = live_calls(served.service, make_jwt("2001", secret=SECRET))
    finally:
        served.hang_up(c, a)
    assert picked == [] and [x["agent"] for x in bound] == ["2001"]


def test_supervisor_key_from_config_sees_calls_but_cannot_start_a_capture(served):
    service = served.service
    c, a = served.connect(user="2003")
    try:
        calls = live_calls(service, service.api_key)
        reply = http(
            "POST",
            f"{service.api_url}/api/calls/{calls[0]['id']}/capture",
            service.api_key,
            {"amount": "1.00", "currency": "GBP", "reference": "S-1"},
        )
    finally:
        served.hang_up(c, a)
    assert calls and reply.status == 403


def test_health_metrics_and_openapi_are_served(served):
    url = served.service.api_url
    assert http("GET", f"{url}/healthz").json() == {"status": "ok"}
    assert http("GET", f"{url}/readyz").status == 200
    assert http("GET", f"{url}/openapi.json").json()["openapi"].startswith("3.")
    assert http("GET", f"{url}/metrics").status == 401  # metrics need a credential
    metrics = http("GET", f"{url}/metrics", served.service.api_key).body.decode()
    assert "masker_active_calls" in metrics
