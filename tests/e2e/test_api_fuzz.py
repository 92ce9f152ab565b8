"""Schemathesis against the published OpenAPI document and a running server: no 5xx, and
every response (status, content type, headers, body) conforms to the document.

The schema is loaded from the same dict the server publishes at /openapi.json (checked
below) because schemathesis' lazy `from_fixture` loader does not work with pytest 9."""

from __future__ import annotations

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings

from masker.api.openapi import openapi_document
from tests.support.api import http, make_jwt, running_api
from tests.support.desktop import OUTPUT_ROOT as OUTPUT_ROOT_NAME

EXAMPLES_PER_OPERATION = 25
CASES: list[str] = []


@pytest.fixture(scope="module")
def fuzz_api():
    with running_api(auth_failures=10**9) as api:
        api.live = [api.call("agent-1") for _ in range(4)]
        yield api
    # how many cases this worker ran, for the record (test-output/ is gitignored)
    out = OUTPUT_ROOT_NAME / "test_api_fuzz"
    out.mkdir(parents=True, exist_ok=True)
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    (out / f"cases-{worker}.txt").write_text(
        f"{len(CASES)} cases over {len(set(CASES))} operations\n"
    )


# the feeds stream forever; tests/integration/test_api_feed.py covers them
schema = schemathesis.openapi.from_dict(openapi_document()).exclude(path_regex=r"/(feed|events)$")


def test_served_document_is_the_fuzzed_one(fuzz_api):
    assert http("GET", f"{fuzz_api.url}/openapi.json").json() == openapi_document()


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_every_response_conforms_to_the_openapi_document(case, fuzz_api, request):
    call_id = case.path_parameters.get("call_id") if case.path_parameters else None
    if call_id is not None and len(call_id) % 2:
        # half the cases aim at live calls so capture start/restart/cancel really run
        case.path_parameters["call_id"] = fuzz_api.live[len(call_id) % len(fuzz_api.live)]
    CASES.append(case.operation.label)
    case.call_and_validate(
        base_url=fuzz_api.url, headers={"Authorization": f"Bearer {make_jwt('agent-1')}"}
    )
