"""Only trusted sources reach the SIP stack: the trunk's networks and the PBX.

Unit: which addresses a SourceAcl admits.  Service: a real `masker serve` that
trusts only 127.0.0.3 (and its PBX on 127.0.0.1) answers an OPTIONS from
127.0.0.3, drops one from 127.0.0.2 unanswered, and counts the drop.
"""

from __future__ import annotations

import signal

import pytest

from masker.errors import UserError
from masker.phones.service_process import ServiceProcess, free_port, sip_options_ping
from masker.runtime.service_config import load_config
from masker.sip.acl import SourceAcl


@pytest.mark.parametrize("host", ["10.1.2.3", "10.255.0.1", "192.0.2.7", "::ffff:10.1.2.3"])
def test_addresses_inside_a_trusted_network_or_the_pbx_are_allowed(host: str) -> None:
    assert SourceAcl(["10.0.0.0/8"], always=["192.0.2.7"]).allows(host)


@pytest.mark.parametrize("host", ["11.0.0.1", "127.0.0.1", "::1", "not-an-address", ""])
def test_addresses_outside_every_trusted_network_are_refused(host: str) -> None:
    assert not SourceAcl(["10.0.0.0/8"]).allows(host)


def test_the_pbx_may_be_given_by_host_name() -> None:
    assert SourceAcl(["10.0.0.0/8"], always=["localhost"]).allows("127.0.0.1")


def test_a_malformed_trusted_network_is_a_config_error() -> None:
    with pytest.raises(UserError, match="trusted_sources"):
        load_config(env={"MASKER_SIP_TRUSTED_SOURCES": "10.0.0.0/8,not-a-net"})


def test_an_empty_trusted_list_is_a_config_error() -> None:
    with pytest.raises(UserError, match="trusted_sources is empty"):
        load_config(env={"MASKER_SIP_TRUSTED_SOURCES": ""})


@pytest.mark.e2e
def test_the_service_answers_trusted_sources_and_drops_the_rest_unanswered(tmp_path) -> None:
    with ServiceProcess(
        free_port(), tmp_path, api=False, extra_toml="",
        env={"MASKER_SIP_TRUSTED_SOURCES": "127.0.0.3/32"},
    ) as service:  # fmt: skip
        addr = ("127.0.0.1", service.sip_port)
        assert sip_options_ping(addr, wait=2.0, source="127.0.0.3") == 200
        assert sip_options_ping(addr, wait=1.0, source="127.0.0.2") == 0
        service.proc.send_signal(signal.SIGUSR1)  # log the counters now
        stats = service.wait_log(lambda line: line.get("sip_drop_untrusted"), timeout=10)
    assert stats["sip_drop_untrusted"] >= 1
