"""The [api] TOML table (and MASKER_API_* environment strings) become an ApiConfig."""

from __future__ import annotations

import hashlib

import pytest

from masker.api import ApiConfig
from masker.errors import UserError


def test_defaults_listen_on_loopback_and_allow_same_origin_framing():
    cfg = ApiConfig.from_mapping({})
    assert (cfg.host, cfg.port, cfg.frame_ancestors) == ("127.0.0.1", 8080, ("'self'",))


def test_jwt_secret_is_read_from_a_file(tmp_path):
    (tmp_path / "jwt.key").write_text("s3cret-value-of-32-bytes-or-more-0123\n")
    cfg = ApiConfig.from_mapping(
        {"jwt_secret_file": str(tmp_path / "jwt.key"), "jwt_audience": "masker"}
    )
    assert cfg.jwt_secret == b"s3cret-value-of-32-bytes-or-more-0123"


def test_secret_never_appears_in_repr(tmp_path, monkeypatch):
    monkeypatch.setenv("T_JWT", "very-secret-jwt-key-0123456789abcdef")
    monkeypatch.setenv("T_KEY", "very-secret-api-key")
    cfg = ApiConfig.from_mapping(
        {
            "jwt_secret_env": "T_JWT",
            "jwt_audience": "masker",
            "keys": [{"sub": "a1", "key_env": "T_KEY"}],
        }
    )
    assert "very-secret" not in repr(cfg)


def test_api_keys_keep_only_their_hash(monkeypatch):
    monkeypatch.setenv("T_KEY", "clear-key")
    entry = {"sub": "a1", "role": "supervisor", "key_env": "T_KEY"}
    cfg = ApiConfig.from_mapping({"keys": [entry]})
    key = cfg.api_keys[0]
    assert (key.sub, key.role, key.sha256) == (
        "a1",
        "supervisor",
        hashlib.sha256(b"clear-key").hexdigest(),
    )


def test_environment_strings_are_accepted():
    cfg = ApiConfig.from_mapping({"port": "9090", "frame_ancestors": "'self', https://crm.example"})
    assert cfg.port == 9090 and cfg.frame_ancestors == ("'self'", "https://crm.example")


@pytest.mark.parametrize(
    "table",
    [
        {"prot": 1},
        {"keys": [{"sub": "a", "role": "admin", "sha256": "00"}]},
        {"keys": [{"role": "agent", "sha256": "00"}]},
        {"keys": "not-a-list"},
        {"jwt_secret_file": "/nonexistent/jwt.key"},
    ],
    ids=["unknown-key", "bad-role", "no-sub", "keys-not-list", "missing-secret-file"],
)
def test_bad_tables_are_one_line_user_errors(table):
    with pytest.raises(UserError):
        ApiConfig.from_mapping(table)
