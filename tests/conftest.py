"""Shared test configuration: every test carries the mark of the directory it lives in
(unit, integration, e2e, security, cluster), so `-m` selects by kind without a mark per file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.api import psp_on_thread, running_api
from tests.support.cards import dev_tokenizer

KINDS = ("unit", "integration", "e2e", "security", "cluster")
_ROOT = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        parts = item.path.resolve().relative_to(_ROOT).parts
        if parts and parts[0] in KINDS:
            item.add_marker(parts[0])


@pytest.fixture(scope="module")
def api(request: pytest.FixtureRequest) -> Iterator[Any]:
    """The desktop API in-process on loopback, with the test module's API_OPTIONS."""
    with running_api(**getattr(request.module, "API_OPTIONS", {})) as running:
        yield running


@pytest.fixture(scope="module")
def psp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A local HTTPS PSP (its own CA) on a thread, approving by default; tests set
    `psp.behaviour` to make it decline, fail, hang or redirect."""
    with psp_on_thread(tmp_path_factory.mktemp("psp-tls")) as server:
        yield server


@pytest.fixture
def tokenizer(tmp_path: Path) -> Iterator[Any]:
    """The real tokeniser on development keys in the test's temp folder."""
    tk = dev_tokenizer(tmp_path)
    yield tk
    tk.close()
