import io
import logging

import pytest
import structlog

from masker.runtime.logs import configure_logging
from tests.support.cards import kek_text
from tokenizer import TokenizerConfig, build_tokenizer
from tokenizer.keys import KeyError_


def config(tmp_path, **kw):
    return TokenizerConfig(
        vault_path=str(tmp_path / "v.sqlite3"), keystore_path=str(tmp_path / "k.json"), **kw
    )


def test_kek_from_the_environment_builds_the_stack(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_STACK_KEK", kek_text(9))
    tk = build_tokenizer(config(tmp_path, kek_env="TEST_STACK_KEK"))
    assert tk.keyring.active_key_id.startswith("dk-")
    tk.close()


def test_kek_from_a_file_builds_the_stack(tmp_path):
    (tmp_path / "kek").write_text(kek_text(9))
    tk = build_tokenizer(config(tmp_path, kek_file=str(tmp_path / "kek"), kek_env=None))
    assert tk.keyring.key_ids()
    tk.close()


def test_missing_kek_outside_dev_mode_is_an_error(tmp_path):
    with pytest.raises(KeyError_):
        build_tokenizer(config(tmp_path, kek_env="UNSET_KEK_VARIABLE"))


def test_dev_mode_makes_keys_and_warns_loudly(tmp_path):
    stream = io.StringIO()
    configure_logging(stream=stream)
    try:
        tk = build_tokenizer(config(tmp_path, kek_env=None), dev_dir=tmp_path / "dev")
        tk.close()
    finally:
        for h in list(logging.getLogger().handlers):
            if getattr(h, "_masker_handler", False):
                logging.getLogger().removeHandler(h)
        structlog.reset_defaults()
    assert "DEVELOPMENT KEYS IN USE" in stream.getvalue() and (tmp_path / "dev").is_dir()


def test_dev_mode_reuses_its_keys_across_restarts(tmp_path):
    first = build_tokenizer(config(tmp_path, kek_env=None), dev_dir=tmp_path / "dev")
    key = first.keyring.active_key_id
    first.close()
    second = build_tokenizer(config(tmp_path, kek_env=None), dev_dir=tmp_path / "dev")
    assert second.keyring.active_key_id == key
    second.close()


def test_config_rejects_an_unknown_token_kind():
    with pytest.raises(ValueError):
        TokenizerConfig(token_kind="magic")


def test_config_rejects_an_unknown_field():
    with pytest.raises(ValueError):
        TokenizerConfig(fields=("pan", "expiry", "shoe_size"))


def test_custom_fields_are_available_to_sessions(tmp_path):
    tk = build_tokenizer(
        config(
            tmp_path,
            kek_env=None,
            custom_fields=(("account", 6, 8),),
            fields=("pan", "expiry", "account"),
        ),
        dev_dir=tmp_path / "d",
    )
    s = tk.new_session(amount_minor=1, currency="GBP", reference="r")
    assert [f["field"] for f in s.status()["fields"]] == ["pan", "expiry", "account"]
    tk.close()
