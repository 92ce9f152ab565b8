"""The desktop API inside the real `masker serve`, with pjsua2 phones placing real calls:
calls are bound to the agent named by the PBX leg, health and metrics are served."""

from __future__ import annotations

import pytest
from api_support import http, make_jwt

pytestmark = pytest.mark.e2e

SECRET = b"serve-api-jwt-secret-0123456789abcdef"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from masker.phones.client import PhoneClient
    from masker.phones.service_process import ServiceProcess

    folder = tmp_path_factory.mktemp("api-serve")
    (folder / "jwt.key").write_bytes(SECRET)
    agent = PhoneClient("agent")
    service = caller = None
    try:
        # ServiceProcess ends its TOML with the [api] table: this line lands in it.
        service = ServiceProcess(pbx_port=agent.sip_port, workdir=folder / "service",
                                 extra_toml=f'jwt_secret_file = "{folder / "jwt.key"}"\n')
        caller = PhoneClient("caller")
        yield service, caller, agent
    finally:
        for closer in (caller and caller.close, service and service.stop, agent.close):
            if closer:
                closer()


def connect(served, uri_user: str, headers: dict[str, str] | None = None) -> tuple[int, int]:
    service, caller, agent = served
    since = len(agent.events)
    c = caller.call(f"sip:{uri_user}@{service.uri_host}", headers=headers)
    a = agent.wait_incoming(since=since)["call"]
    agent.answer(a, 200)
    caller.wait_state(c, "CONFIRMED")
    return c, a


def hang_up(served, c: int, a: int) -> None:
    _, caller, agent = served
    caller.hangup(c)
    caller.wait_state(c, "DISCONNECTED")
    agent.wait_state(a, "DISCONNECTED")


def live_calls(service, token: str) -> list[dict]:
    reply = http("GET", f"{service.api_url}/api/calls", token)
    assert reply.status == 200
    return [c for c in reply.json()["calls"] if c["state"] != "ended"]


def test_call_is_bound_to_the_request_uri_user_of_the_agent_leg(served):
    c, a = connect(served, "2001")
    try:
        mine = live_calls(served[0], make_jwt("2001", secret=SECRET))
        others = live_calls(served[0], make_jwt("2002", secret=SECRET))
    finally:
        hang_up(served, c, a)
    assert [x["agent"] for x in mine] == ["2001"] and others == []


def test_agent_id_header_overrides_the_request_uri_user(served):
    c, a = connect(served, "2001", headers={"X-Agent-Id": "agent-77"})
    try:
        bound = live_calls(served[0], make_jwt("agent-77", secret=SECRET))
    finally:
        hang_up(served, c, a)
    assert [x["agent"] for x in bound] == ["agent-77"]


def test_supervisor_key_from_config_sees_calls_but_cannot_start_a_capture(served):
    service = served[0]
    c, a = connect(served, "2003")
    try:
        calls = live_calls(service, service.api_key)
        reply = http("POST", f"{service.api_url}/api/calls/{calls[0]['id']}/capture",
                     service.api_key, {"amount": "1.00", "currency": "GBP", "reference": "S-1"})
    finally:
        hang_up(served, c, a)
    assert calls and reply.status == 403


def test_health_metrics_and_openapi_are_served(served):
    url = served[0].api_url
    assert http("GET", f"{url}/healthz").json() == {"status": "ok"}
    assert http("GET", f"{url}/readyz").status == 200
    assert http("GET", f"{url}/openapi.json").json()["openapi"].startswith("3.")
    assert "masker_active_calls" in http("GET", f"{url}/metrics").body.decode()
