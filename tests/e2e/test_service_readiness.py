"""The readiness checks the service hands to /readyz: each one probes the real thing."""

from __future__ import annotations

import gc
import socket
import sqlite3
from types import SimpleNamespace

import pytest

from masker.runtime.service import Service, sip_socket_bound
from masker.runtime.service_config import load_config


@pytest.fixture
def service(tmp_path):
    cfg = load_config(
        None,
        env={
            "MASKER_TOKENIZER_VAULT_PATH": str(tmp_path / "v.sqlite"),
            "MASKER_TOKENIZER_KEYS_DIR": str(tmp_path / "keys"),
        },
    )
    svc = Service(cfg)
    yield svc
    svc.tokenizer.close()


def transaction_manager(*sockets) -> SimpleNamespace:
    """The shape of sippy's transaction manager: l4r.cache_l2s -> servers with .skt."""
    servers = {i: SimpleNamespace(skt=s) for i, s in enumerate(sockets)}
    return SimpleNamespace(l4r=SimpleNamespace(cache_l2s=servers))


def test_vault_check_passes_on_an_open_vault(service):
    assert service.ready_checks()["vault"]() is True


def test_vault_check_fails_once_the_vault_is_closed(service):
    service.tokenizer.store.close()
    with pytest.raises(sqlite3.ProgrammingError):
        service.ready_checks()["vault"]()


def test_sip_is_not_ready_before_the_service_runs(service):
    assert not service.ready_checks()["sip"]()


def test_a_bound_sip_socket_counts_as_listening():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        assert sip_socket_bound(transaction_manager(s))


def test_a_closed_sip_socket_does_not():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.close()
    assert not sip_socket_bound(transaction_manager(s))


def test_no_sip_socket_at_all_is_not_listening():
    assert not sip_socket_bound(None)


def test_the_collector_is_calmed_once_the_service_is_up():
    from masker.runtime.service import FULL_GC_EVERY, calm_garbage_collector

    before = gc.get_threshold()
    try:
        calm_garbage_collector()
        assert gc.get_freeze_count() > 0  # start-up objects out of every full collection
        assert gc.get_threshold()[2] == FULL_GC_EVERY > before[2]
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
