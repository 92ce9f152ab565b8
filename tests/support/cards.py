"""Shared builders for the tokeniser tests: test cards, keys, vaults, a manual clock."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from tokenizer import Tokenizer, TokenizerConfig, build_tokenizer
from tokenizer.clock import ManualClock
from tokenizer.keys import Kek, KeyRing, create_store
from tokenizer.sensitive import SensitiveDigits
from tokenizer.vault import CardVault, SqliteVaultStore

# Public test card numbers (scheme test ranges, all Luhn-valid).
VISA = "4242424242424242"
VISA13 = "4222222222222"
MASTERCARD = "5555555555554444"
MASTERCARD_2SERIES = "2223003122003222"
AMEX = "378282246310005"
DISCOVER = "6011111111111117"
JCB = "3566002020360505"
UNIONPAY = "6200000000000005"
DINERS = "36227206271667"
MAESTRO = "6759649826438453"

# A card whose parts are easy to look for in scans: expiry 08/39, CVV 947.
SCAN_PAN = "4000056655665556"
SCAN_EXPIRY = "0839"
SCAN_CVV = "947"


def kek_from_seed(seed: int) -> Kek:
    return Kek(bytes([seed]) * 32)


def kek_text(seed: int) -> str:
    return base64.b64encode(bytes([seed]) * 32).decode()


def make_keyring(folder: Path, kek: Kek | None = None) -> KeyRing:
    kek = kek or kek_from_seed(7)
    store = folder / "keys.json"
    create_store(store, kek)
    return KeyRing(store, kek)


def make_vault(folder: Path, ttl_s: float = 3600.0, kek: Kek | None = None) -> CardVault:
    keyring = make_keyring(folder, kek)
    return CardVault(SqliteVaultStore(folder / "vault.sqlite3"), keyring, ttl_s=ttl_s)


def sd(text: str) -> SensitiveDigits:
    return SensitiveDigits(text)


def manual_clock() -> ManualClock:
    return ManualClock()


def dev_tokenizer(folder: Path, **config: Any) -> Tokenizer:
    """The real tokeniser on development keys kept in `folder` (vault, key store and
    dev KEK there); `config` overrides TokenizerConfig fields."""
    settings = TokenizerConfig(
        vault_path=str(folder / "vault.sqlite3"),
        keystore_path=str(folder / "keys.json"),
        kek_env=None,
        **config,
    )
    return build_tokenizer(settings, dev_dir=folder / "dev")


def files_holding(root: Path, needles: list[bytes]) -> list[str]:
    """Every file under `root` whose bytes contain any needle (in ASCII or UTF-16)."""
    forms = needles + [n.decode().encode("utf-16-le") for n in needles]
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            hits += [str(path) for form in forms if form in data]
    return hits
