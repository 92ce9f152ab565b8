"""`masker serve` refuses to start with a one-line error (exit 2) when it cannot run."""

from __future__ import annotations

import socket
import subprocess
import sys

from masker.phones.service_process import free_port, serve_env


def serve(tmp_path, **env_extra) -> subprocess.CompletedProcess:
    env = serve_env(
        {
            "MASKER_SERVICE_API_ENABLED": "false",
            "MASKER_TOKENIZER_VAULT_PATH": str(tmp_path / "v.sqlite"),
            "MASKER_TOKENIZER_KEYS_DIR": str(tmp_path / "keys"),
            **env_extra,
        }
    )
    return subprocess.run(
        [sys.executable, "-m", "masker.cli", "serve"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_production_mode_without_a_key_encryption_key_is_refused(tmp_path):
    res = serve(
        tmp_path, MASKER_SIP_LISTEN_PORT=str(free_port()), MASKER_TOKENIZER_DEV_KEYS="false"
    )
    assert res.returncode == 2
    assert "no KEK" in res.stderr and "Traceback" not in res.stderr


def test_sip_port_in_use_is_refused(tmp_path):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(("127.0.0.1", 0))
        res = serve(tmp_path, MASKER_SIP_LISTEN_PORT=str(busy.getsockname()[1]))
    assert res.returncode == 2
    assert "cannot listen for SIP" in res.stderr


def test_bad_config_value_is_refused(tmp_path):
    res = serve(tmp_path, MASKER_MASKING_POLICY="sometimes")
    assert res.returncode == 2 and "policy" in res.stderr
