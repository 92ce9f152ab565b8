"""`masker keys` end to end, through the real console entry point."""

import argparse
import json
import os
import stat
import subprocess
import sys

import pytest

from masker.commands import keys as keys_command
from masker.errors import UserError
from tests.support.cards import VISA, kek_text, sd
from tokenizer.keys import Kek, KeyRing
from tokenizer.vault import CardVault, SqliteVaultStore


@pytest.fixture
def kek_file(tmp_path):
    path = tmp_path / "kek"
    path.write_text(kek_text(11))
    return path


def keys(*args):
    """Dispatch like masker.cli.main, without importing the other sub-commands."""
    parser = argparse.ArgumentParser(prog="masker")
    sub = parser.add_subparsers(dest="command")
    keys_command.add_parser(sub)
    parsed = parser.parse_args(["keys", *map(str, args)])
    try:
        return keys_command.run(parsed)
    except UserError as exc:
        print(f"masker keys: error: {exc}", file=sys.stderr)
        return 2


def test_generate_kek_writes_a_private_usable_file(tmp_path):
    assert keys("generate-kek", "--out", tmp_path / "new.kek") == 0
    assert stat.S_IMODE(os.stat(tmp_path / "new.kek").st_mode) == 0o600
    assert Kek.from_file(tmp_path / "new.kek").id.startswith("kek-")


def test_generate_kek_refuses_to_overwrite(tmp_path, kek_file):
    assert keys("generate-kek", "--out", kek_file) == 2


def test_create_makes_a_store_with_an_active_key(tmp_path, kek_file):
    assert keys("create", "--store", tmp_path / "k.json", "--kek-file", kek_file) == 0
    doc = json.loads((tmp_path / "k.json").read_text())
    assert doc["active"] in doc["keys"]


def test_create_with_kek_from_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("CLI_TEST_KEK", kek_text(12))
    assert keys("create", "--store", tmp_path / "k.json", "--kek-env", "CLI_TEST_KEK") == 0


def test_missing_kek_is_a_one_line_error(tmp_path, capsys):
    assert keys("create", "--store", tmp_path / "k.json", "--kek-env", "UNSET_CLI_KEK") == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_rotate_adds_an_active_key(tmp_path, kek_file):
    store = tmp_path / "k.json"
    keys("create", "--store", store, "--kek-file", kek_file)
    before = json.loads(store.read_text())["active"]
    assert keys("rotate", "--store", store, "--kek-file", kek_file) == 0
    doc = json.loads(store.read_text())
    assert doc["active"] != before and before in doc["keys"]


def test_rotation_keeps_old_vault_records_readable_and_reencrypt_moves_them(tmp_path, kek_file):
    store, vault_path = tmp_path / "k.json", tmp_path / "v.sqlite3"
    keys("create", "--store", store, "--kek-file", kek_file)
    kek = Kek.from_file(kek_file)
    vault = CardVault(SqliteVaultStore(vault_path), KeyRing(store, kek))
    old = vault.store_card(
        token="tok_a",
        scope="s",
        fingerprint="f",
        pan=sd(VISA),
        expiry=sd("0839"),
        brand="visa",
        now=1.0e9,
    ).key_id
    keys("rotate", "--store", store, "--kek-file", kek_file)
    assert vault.open("tok_a", 1.0e9).pan.reveal() == VISA
    assert (
        keys(
            "reencrypt",
            "--store",
            store,
            "--vault",
            vault_path,
            "--from-key",
            old,
            "--kek-file",
            kek_file,
        )
        == 0
    )
    assert vault.store.get("tok_a").key_id != old
    assert vault.open("tok_a", 1.0e9).pan.reveal() == VISA
    vault.store.close()


def test_kek_rotation_rewrap_then_retire(tmp_path, kek_file):
    store, new_kek = tmp_path / "k.json", tmp_path / "kek2"
    new_kek.write_text(kek_text(13))
    keys("create", "--store", store, "--kek-file", kek_file)
    assert keys("rewrap", "--store", store, "--kek-file", kek_file, "--new-kek-file", new_kek) == 0
    assert keys("retire-kek", "--store", store, "--kek-file", new_kek) == 0
    assert KeyRing(store, Kek.from_file(new_kek)).key_ids()


def test_list_prints_ids_and_no_key_material(tmp_path, kek_file, capsys):
    store = tmp_path / "k.json"
    keys("create", "--store", store, "--kek-file", kek_file)
    capsys.readouterr()
    assert keys("list", "--store", store) == 0
    out = capsys.readouterr().out
    ring = KeyRing(store, Kek.from_file(kek_file))
    assert ring.active_key_id in out and ring.data_key(ring.active_key_id).hex() not in out


def test_console_script_runs_keys(tmp_path, kek_file):
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "masker.cli",
            "keys",
            "create",
            "--store",
            str(tmp_path / "k.json"),
            "--kek-file",
            str(kek_file),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0 and "active data key" in proc.stdout
