"""Development sign-in: a generated key under ./var/ only when dev keys are in use and no
API credential is configured; its `developer` role sees and drives every call."""

from __future__ import annotations

import os
import stat
import time

import jwt
import pytest

from masker.api import ApiConfig, ApiKey
from masker.api.auth import Authenticator, AuthError, Principal
from masker.runtime.devaccess import (
    dev_banner,
    ensure_dev_api_key,
    wants_dev_credential,
    with_dev_key,
)
from masker.runtime.service_config import Config


def test_dev_defaults_without_credentials_want_a_dev_key():
    assert wants_dev_credential(Config(), ApiConfig())


def test_production_keys_never_get_a_dev_key():
    cfg = Config()
    cfg.tokenizer.dev_keys = False
    assert not wants_dev_credential(cfg, ApiConfig())


def test_a_configured_credential_means_no_dev_key():
    assert not wants_dev_credential(Config(), ApiConfig(jwt_secret=b"x" * 32, jwt_audience="m"))
    assert not wants_dev_credential(Config(), ApiConfig(api_keys=(ApiKey.from_clear("k", "a"),)))


def test_key_is_created_once_with_owner_only_permissions(tmp_path):
    path = tmp_path / "var" / "dev-api-key"
    first = ensure_dev_api_key(path)
    assert ensure_dev_api_key(path) == first and len(first) >= 32
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_dev_key_authenticates_as_the_developer_role():
    key = "dev-key-for-this-test-only"
    principal = Authenticator(with_dev_key(ApiConfig(), key)).authenticate(key)
    assert principal == Principal("developer", "developer")


def test_developer_role_sees_every_call_but_an_agent_only_its_own():
    assert Principal("developer", "developer").may_see("agent-9")
    assert not Principal("agent-1", "agent").may_see("agent-9")


def test_banner_gives_the_desktop_url_and_says_development():
    text = dev_banner("http://127.0.0.1:8080", "KEY123", "./var/dev-api-key")
    assert "http://127.0.0.1:8080/desktop#token=KEY123" in text and "DEVELOPMENT" in text


def test_a_jwt_cannot_claim_the_developer_role():
    secret = b"jwt-secret-for-this-test-0123456789"
    now = int(time.time())
    token = jwt.encode(
        {"sub": "x", "role": "developer", "aud": "m", "iat": now, "exp": now + 60},
        secret,
        algorithm="HS256",
    )
    with pytest.raises(AuthError):
        Authenticator(ApiConfig(jwt_secret=secret, jwt_audience="m")).authenticate(token)
