"""Process hygiene: no core dumps, no KEK left in the environment, dev keys stay on loopback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from masker.errors import UserError
from masker.runtime.hardening import (
    forget_environment,
    is_loopback,
    refuse_dev_keys_on_network,
)
from masker.runtime.service_config import Config
from tests.support.harness import masker
from tokenizer.keys import new_kek_text


def _python(code: str, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
        check=True,
    )
    return done.stdout.strip().splitlines()[-1]


def test_disabling_core_dumps_sets_the_core_limit_to_zero_and_clears_dumpable() -> None:
    out = _python(
        "import resource; from masker.runtime.hardening import disable_core_dumps, is_dumpable\n"
        "before = is_dumpable(); ok = disable_core_dumps()\n"
        "print(before, ok, resource.getrlimit(resource.RLIMIT_CORE), is_dumpable())"
    )
    assert out == "True True (0, 0) False"


def test_forgetting_the_environment_removes_only_the_named_variables(monkeypatch) -> None:
    monkeypatch.setenv("MASKER_TEST_SECRET", "x")
    monkeypatch.setenv("MASKER_TEST_KEEP", "y")
    assert forget_environment(["MASKER_TEST_SECRET", None, "MASKER_TEST_ABSENT"]) == [
        "MASKER_TEST_SECRET"
    ]
    assert "MASKER_TEST_SECRET" not in os.environ
    assert os.environ["MASKER_TEST_KEEP"] == "y"


def test_the_kek_variable_is_gone_once_the_tokeniser_has_read_it(tmp_path) -> None:
    code = (
        "import os; from masker.runtime.service_config import Config; "
        "from masker.runtime.service import default_session_factory\n"
        "c = Config(); c.tokenizer.dev_keys = False\n"
        f"c.tokenizer.vault_path = {str(tmp_path / 'vault.sqlite')!r}\n"
        f"c.tokenizer.keys_dir = {str(tmp_path / 'keys')!r}\n"
        "default_session_factory(c); print('MASKER_KEK' in os.environ)"
    )
    assert _python(code, {"MASKER_KEK": new_kek_text()}) == "False"


def test_the_dsn_variables_are_gone_once_the_service_has_its_config() -> None:
    code = (
        "import os; from masker.runtime.service_config import load_config; "
        "from masker.runtime.service import Service\n"
        "Service(load_config(), tokenizer_enabled=False)\n"
        "print(sorted(n for n in os.environ if n.endswith('DSN')))"
    )
    dsn = "postgresql://masker:s3cret@127.0.0.1:1/masker"
    env = {"MASKER_TOKENIZER_VAULT_DSN": dsn, "MASKER_CLUSTER_DSN": dsn}
    assert _python(code, env) == "[]"


@pytest.mark.parametrize("address", ["127.0.0.1", "127.0.1.1", "::1", "localhost"])
def test_loopback_addresses_are_recognised(address: str) -> None:
    assert is_loopback(address)


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "10.0.0.5", "192.0.2.1", "pbx.example"])
def test_wildcard_and_network_addresses_are_not_loopback(address: str) -> None:
    assert not is_loopback(address)


def test_dev_keys_on_a_network_address_are_refused() -> None:
    with pytest.raises(UserError, match="--allow-dev-keys-on-network"):
        refuse_dev_keys_on_network(True, {"sip": "0.0.0.0", "api": "127.0.0.1"})


def test_dev_keys_on_a_network_address_start_when_forced() -> None:
    refuse_dev_keys_on_network(True, {"sip": "0.0.0.0"}, forced=True)


def test_production_keys_may_listen_anywhere() -> None:
    refuse_dev_keys_on_network(False, {"sip": "0.0.0.0", "api": "10.0.0.5"})


def test_masker_serve_with_dev_keys_on_all_interfaces_exits_with_a_clear_error(
    tmp_path,
) -> None:
    config = tmp_path / "serve.toml"
    config.write_text('[sip]\nlisten_address = "0.0.0.0"\n')
    done = masker("serve", "--config", str(config), timeout=60)
    assert done.returncode == 2
    assert "development keys" in done.stderr
    assert "sip=0.0.0.0" in done.stderr
    assert Config().tokenizer.dev_keys  # the embedded default stays usable on loopback
