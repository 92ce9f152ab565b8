"""Fixtures of the cluster tests: one PostgreSQL for the package (the shared vault,
where the service's config knows it), one PBX endpoint per test."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.postgres import PostgresServer, running_postgres
from tests.support.sip_client import SipEndpoint


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


@pytest.fixture
def pbx() -> Iterator[SipEndpoint]:
    """The PBX every node sends its agent legs to (a scripted UAS)."""
    ep = SipEndpoint("pbx")
    yield ep
    ep.close()
