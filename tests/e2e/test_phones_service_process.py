"""The `masker serve` launcher: which log lines match, which environment the service
gets, a start retried when a port was taken, a wait that ends with the service."""

from __future__ import annotations

import socket
import time

import pytest

from masker.phones import service_process
from masker.phones.service_process import (
    SOURCE_ROOT,
    ServiceError,
    ServiceProcess,
    free_port,
    log_matcher,
    serve_env,
)


def test_an_event_name_matches_lines_of_that_event():
    accepts = log_matcher("call.ended", {})
    assert accepts({"event": "call.ended", "call": "c1"})
    assert not accepts({"event": "call.connected"})


def test_fields_must_all_be_equal():
    accepts = log_matcher("capture.event", {"call": "c1", "kind": "token"})
    assert accepts({"event": "capture.event", "call": "c1", "kind": "token", "x": 1})
    assert not accepts({"event": "capture.event", "call": "c2", "kind": "token"})
    assert not accepts({"event": "capture.event", "call": "c1"})


def test_a_predicate_matches_as_it_says_and_fields_still_apply():
    accepts = log_matcher(lambda line: line.get("level") == "error", {"call": "c1"})
    assert accepts({"level": "error", "call": "c1"})
    assert not accepts({"level": "error", "call": "c2"})
    assert not accepts({"level": "info", "call": "c1"})


def test_inherited_masker_settings_are_dropped_and_extras_added(monkeypatch):
    monkeypatch.setenv("MASKER_SIP_LISTEN_PORT", "5060")
    monkeypatch.setenv("HOME_FOR_TEST", "kept")
    env = serve_env({"MASKER_SERVICE_DRAIN_GRACE_S": "1"})
    assert "MASKER_SIP_LISTEN_PORT" not in env
    assert env["HOME_FOR_TEST"] == "kept"
    assert env["MASKER_SERVICE_DRAIN_GRACE_S"] == "1"


def test_the_service_imports_the_same_source_as_its_launcher(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/elsewhere")
    assert serve_env()["PYTHONPATH"].split(":") == [str(SOURCE_ROOT), "/elsewhere"]


@pytest.mark.e2e
def test_a_port_taken_before_the_service_binds_it_is_retried_on_a_fresh_one(tmp_path, monkeypatch):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        taken = busy.getsockname()[1]
        ports = iter([taken])
        monkeypatch.setattr(
            service_process,
            "free_port",
            lambda kind=socket.SOCK_DGRAM: next(ports, None) or free_port(kind),
        )
        with ServiceProcess(pbx_port=free_port(), workdir=tmp_path, api=False) as service:
            assert service.sip_port != taken
            assert service.wait_log("service ready")["sip"] == service.uri_host


@pytest.mark.e2e
def test_waiting_for_a_log_line_ends_when_the_service_has_exited(tmp_path):
    service = ServiceProcess(pbx_port=free_port(), workdir=tmp_path, api=False)
    assert service.stop() == 0
    t0 = time.monotonic()
    with pytest.raises(ServiceError, match="exited"):
        service.wait_log("never logged", timeout=10)
    assert time.monotonic() - t0 < 2.0
