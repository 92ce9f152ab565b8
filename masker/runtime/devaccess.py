"""Development sign-in for the agent desktop: `make run` on embedded defaults is usable.

With development keys and no `[api]` credential configured, the service
generates an API key under ./var/ (kept across restarts, mode 0600), grants it
the `developer` role (every call, full control; only this generated key can
hold that role, never a JWT or a configured key) and prints the /desktop URL
that signs in with it.  Production configurations never get here.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from pathlib import Path

from masker.api.settings import ApiConfig, ApiKey
from masker.runtime.service_config import Config

DEV_SUB = "developer"
DEV_ROLE = "developer"


def wants_dev_credential(config: Config, api: ApiConfig) -> bool:
    """Dev keys in use and the API would otherwise answer every request with 401."""
    return config.tokenizer.dev_keys and not api.jwt_secret and not api.api_keys


def ensure_dev_api_key(path: str | os.PathLike[str]) -> str:
    """The development API key stored at `path`, created on first use."""
    file = Path(path)
    if file.is_file():
        key = file.read_text().strip()
        if key:
            return key
    file.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(32)
    fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key + "\n")
    return key


def with_dev_key(api: ApiConfig, key: str) -> ApiConfig:
    return dataclasses.replace(
        api, api_keys=api.api_keys + (ApiKey.from_clear(key, DEV_SUB, DEV_ROLE),)
    )


def desktop_url(api_url: str, key: str) -> str:
    return f"{api_url}/desktop#token={key}"


def dev_banner(api_url: str, key: str, key_file: str | os.PathLike[str]) -> str:
    url = desktop_url(api_url, key)
    rule = "*" * 78
    return "\n".join(
        [
            rule,
            "*  AGENT DESKTOP (development sign-in):",
            f"*    {url}",
            f"*  API key (Authorization: Bearer ...) kept in {key_file}",
            "*  WARNING: this credential is for DEVELOPMENT only. It sees and controls every",
            "*  call. Configure [api] jwt_secret_file or keys (and dev_keys = false) before",
            "*  anything real goes through this service.",
            rule,
            "",
        ]
    )
