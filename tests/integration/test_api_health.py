"""Liveness, readiness (checks supplied by the service) and the Prometheus endpoint."""

from __future__ import annotations

import pytest

from masker.runtime import metrics
from tests.support.api import SUPERVISOR_KEY, http, running_api


@pytest.fixture
def api():
    with running_api() as api:
        yield api


def test_healthz_says_ok(api):
    reply = http("GET", f"{api.url}/healthz")
    assert reply.status == 200 and reply.json() == {"status": "ok"}


def test_readyz_is_200_when_every_check_passes(api):
    reply = http("GET", f"{api.url}/readyz")
    assert reply.status == 200
    checks = {"sip": True, "media": True, "vault": True}
    assert reply.json() == {"status": "ready", "checks": checks}


def test_readyz_is_503_naming_the_failing_check(api):
    api.ready["vault"] = False
    reply = http("GET", f"{api.url}/readyz")
    assert reply.status == 503 and reply.json()["checks"]["vault"] is False


def test_readyz_treats_a_raising_check_as_not_ready():
    from masker.api import ApiConfig, start_api_server
    from masker.calls.registry import Registry

    def broken():
        raise OSError("vault unreachable")

    server = start_api_server(Registry(), ApiConfig(port=0), ready_checks={"vault": broken})
    try:
        reply = http("GET", f"{server.url}/readyz")
    finally:
        server.stop()
    assert reply.status == 503 and reply.json()["checks"] == {"vault": False}


def test_metrics_exposes_the_service_counters(api):
    text = http("GET", f"{api.url}/metrics", SUPERVISOR_KEY).body.decode()
    for name in (
        "masker_active_calls",
        "masker_digits_masked_total",
        "masker_captures_started_total",
        "masker_captures_completed_total",
        "masker_captures_failed_total",
        "masker_handoff_results_total",
        "masker_media_late_packets_total",
    ):
        assert f"# TYPE {name.removesuffix('_total')}" in text


def test_metrics_count_masked_digits_by_source(api):
    before = metrics.DIGITS_MASKED.labels("info")._value.get()
    api.key(api.call(), "12", source="info")
    text = http("GET", f"{api.url}/metrics", SUPERVISOR_KEY).body.decode()
    line = next(
        x for x in text.splitlines() if x.startswith('masker_digits_masked_total{source="info"}')
    )
    assert float(line.split()[-1]) == before + 2


def test_metrics_content_type_is_prometheus_text(api):
    reply = http("GET", f"{api.url}/metrics", SUPERVISOR_KEY)
    assert reply.headers["Content-Type"].startswith("text/plain; version=")
