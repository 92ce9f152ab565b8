"""Choosing the vault: `vault_backend` and `vault_dsn`, in the tokeniser's config and in
the service's [tokenizer] section (env MASKER_TOKENIZER_VAULT_DSN)."""

import pytest

from masker.errors import UserError
from masker.runtime.service_config import load_config
from tokenizer import TokenizerConfig
from tokenizer.stack import open_vault_store
from tokenizer.vault import SqliteVaultStore

DSN = "postgresql://masker:s3cret-pw@db.example/masker"


def test_sqlite_is_the_default_vault(tmp_path):
    store = open_vault_store(TokenizerConfig(vault_path=str(tmp_path / "v.sqlite3")))
    assert isinstance(store, SqliteVaultStore)
    store.close()


def test_an_unknown_vault_backend_is_refused():
    with pytest.raises(ValueError):
        TokenizerConfig(vault_backend="mysql")


def test_postgresql_without_a_dsn_is_refused():
    with pytest.raises(ValueError):
        TokenizerConfig(vault_backend="postgresql")


def test_the_tokenizer_config_never_shows_the_dsn():
    assert "s3cret" not in repr(TokenizerConfig(vault_backend="postgresql", vault_dsn=DSN))


def test_the_service_reads_the_dsn_from_the_environment_and_never_shows_it():
    cfg = load_config(
        None,
        env={"MASKER_TOKENIZER_VAULT_BACKEND": "postgresql", "MASKER_TOKENIZER_VAULT_DSN": DSN},
    )
    assert cfg.tokenizer.vault_dsn == DSN and "s3cret" not in repr(cfg)


@pytest.mark.parametrize(
    "env",
    [
        {"MASKER_TOKENIZER_VAULT_BACKEND": "postgresql"},
        {"MASKER_TOKENIZER_VAULT_BACKEND": "mysql", "MASKER_TOKENIZER_VAULT_DSN": DSN},
    ],
)
def test_the_service_refuses_a_vault_it_cannot_build(env):
    with pytest.raises(UserError):
        load_config(None, env=env)
