"""TOML config with environment overrides; masker/runtime/default.toml documents every key."""

from __future__ import annotations

import re
from dataclasses import fields

import pytest

from masker.errors import UserError
from masker.runtime.service_config import DEFAULT_FILE, SECTIONS, Config, load_config


def test_default_file_matches_the_built_in_defaults():
    assert load_config(DEFAULT_FILE, env={}) == Config()


def test_every_key_is_documented_in_the_default_file():
    text = DEFAULT_FILE.read_text()
    for section in SECTIONS:
        assert f"[{section}]" in text
        for f in fields(getattr(Config(), section)):
            assert re.search(rf"^{f.name} = ", text, re.M), f"{section}.{f.name} undocumented"


def test_file_values_override_defaults(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text('[sip]\nlisten_port = 5070\n[pbx]\naddress = "10.0.0.5"\n')
    cfg = load_config(path, env={})
    assert cfg.sip.listen_port == 5070 and cfg.pbx.address == "10.0.0.5"


def test_environment_overrides_the_file(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text("[media]\nport_min = 30000\n")
    env = {"MASKER_MEDIA_PORT_MIN": "40000", "MASKER_MEDIA_PORT_MAX": "40100"}
    cfg = load_config(path, env=env)
    assert (cfg.media.port_min, cfg.media.port_max) == (40000, 40100)


def test_environment_booleans_and_lists_are_parsed():
    cfg = load_config(
        None,
        env={"MASKER_SERVICE_API_ENABLED": "false", "MASKER_PBX_PASS_HEADERS": "Diversion, X-Foo"},
    )
    assert cfg.service.api_enabled is False
    assert cfg.pbx.pass_headers == ["Diversion", "X-Foo"]


def test_unknown_key_is_an_error(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text("[sip]\nlisten_prot = 5070\n")
    with pytest.raises(UserError, match="listen_prot"):
        load_config(path, env={})


def test_wrong_type_is_an_error():
    with pytest.raises(UserError, match="integer"):
        load_config(None, env={"MASKER_SIP_LISTEN_PORT": "fifty"})


def test_invalid_policy_is_an_error():
    with pytest.raises(UserError, match="policy"):
        load_config(None, env={"MASKER_MASKING_POLICY": "sometimes"})


def test_bad_port_range_is_an_error():
    with pytest.raises(UserError, match="port_min"):
        load_config(None, env={"MASKER_MEDIA_PORT_MIN": "30000", "MASKER_MEDIA_PORT_MAX": "20000"})


def test_a_stall_log_threshold_under_a_frame_is_an_error():
    with pytest.raises(UserError, match="stall_log_ms"):
        load_config(None, env={"MASKER_MEDIA_STALL_LOG_MS": "10"})


def test_other_components_sections_are_kept_raw(tmp_path):
    path = tmp_path / "m.toml"
    path.write_text("[api]\nport = 8081\n")
    cfg = load_config(path, env={"MASKER_API_HOST": "127.0.0.1"})
    assert cfg.extra["api"] == {"port": 8081, "host": "127.0.0.1"}


def test_missing_file_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="not found"):
        load_config(tmp_path / "nope.toml", env={})


def test_pbx_password_is_not_in_repr():
    cfg = load_config(None, env={"MASKER_PBX_PASSWORD": "s3cret"})
    assert "s3cret" not in repr(cfg)


def test_gateway_url_and_purge_interval_come_from_the_environment():
    env = {
        "MASKER_GATEWAY_URL": "https://psp.example/charge",
        "MASKER_GATEWAY_TIMEOUT_S": "7.5",
        "MASKER_TOKENIZER_PURGE_INTERVAL_S": "60",
    }
    cfg = load_config(None, env=env)
    assert (cfg.gateway.url, cfg.gateway.timeout_s, cfg.tokenizer.purge_interval_s) == (
        "https://psp.example/charge",
        7.5,
        60.0,
    )


def test_gateway_url_must_be_https():
    with pytest.raises(UserError, match="https"):
        load_config(None, env={"MASKER_GATEWAY_URL": "http://psp.example/charge"})


def test_no_gateway_by_default():
    assert load_config(DEFAULT_FILE, env={}).gateway.url == ""
