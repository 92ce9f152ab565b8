"""Fixtures shared by the end-to-end tests: real `masker serve` processes."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.support.e2e import start_rig, stop_rig
from tests.support.serve import Served


def _folder(request: pytest.FixtureRequest, factory: pytest.TempPathFactory) -> Any:
    return factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])


@pytest.fixture(scope="module")
def served(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """One service (with a scripted PBX) per test module, configured by the module's
    SERVED_ENV; every test places its own calls, as on a real trunk."""
    service = Served(
        _folder(request, tmp_path_factory), env_extra=getattr(request.module, "SERVED_ENV", None)
    )
    yield service
    service.stop()


@pytest.fixture(scope="module")
def rig(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A service with pjsua2 caller and agent phones, one per test module."""
    started = start_rig(_folder(request, tmp_path_factory))
    yield started
    stop_rig(started)
