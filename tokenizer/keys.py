"""Data keys wrapped by a key-encryption key (KEK), with rotation.

The KEK is read once at start-up from a file or an environment variable, never
from code or the repository. Data keys (AES-256) live in a JSON key store,
each one wrapped with AES-256-GCM under the KEK (its key id is the associated
data), so the store file alone reveals nothing.

Rotation without downtime:
- ``rotate_data_key`` adds a new data key and makes it active; old keys stay in
  the store so records sealed under them remain readable. A running ``KeyRing``
  notices the changed file and picks up the new key.
- ``rewrap`` adds a wrapping of every data key under a new KEK next to the old
  one, so nodes still on the old KEK keep working; ``retire_kek`` drops the old
  wrapping once every node runs on the new KEK.

Several nodes on one shared vault (PostgreSQL) all read the same key store file and
KEK; which data key seals new records is then recorded in the vault, not taken from
each node's copy of this file, and moves forward only when ``CardVault.reencrypt``
runs (see ``tokenizer.postgres_vault``).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TypedDict

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

KEY_BYTES = 32
STORE_VERSION = 1
INDEX_KEY_ID = "index"


class KeyError_(Exception):
    """A key problem whose message is safe to show (names ids, never key bytes)."""


def _decode_key_text(text: str, origin: str) -> bytes:
    text = text.strip()
    candidates = []
    if len(text) == 2 * KEY_BYTES:
        with contextlib.suppress(ValueError):
            candidates.append(bytes.fromhex(text))
    with contextlib.suppress(binascii.Error, ValueError):
        candidates.append(base64.b64decode(text, validate=True))
    for c in candidates:
        if len(c) == KEY_BYTES:
            return c
    raise KeyError_(f"{origin} does not hold a 32-byte key (hex or base64)")


class Kek:
    """A key-encryption key. Its id is an HMAC of a label, not of the key bytes' hash."""

    __slots__ = ("_aead", "id")

    def __init__(self, key: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise KeyError_("a KEK must be 32 bytes")
        self._aead = AESGCM(key)
        self.id = "kek-" + hmac.new(key, b"dtmf-masker kek id", hashlib.sha256).hexdigest()[:12]

    def __repr__(self) -> str:
        return f"Kek(id={self.id!r})"

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> Kek:
        p = Path(path)
        try:
            raw = p.read_bytes()
        except OSError as exc:
            raise KeyError_(f"cannot read KEK file {p}: {exc.strerror}") from None
        if len(raw) == KEY_BYTES:
            return cls(raw)
        return cls(_decode_key_text(raw.decode("ascii", "replace"), f"KEK file {p}"))

    @classmethod
    def from_env(cls, name: str) -> Kek:
        value = os.environ.get(name)
        if not value:
            raise KeyError_(f"environment variable {name} is not set")
        return cls(_decode_key_text(value, f"environment variable {name}"))

    def wrap(self, key: bytes, key_id: str) -> str:
        nonce = os.urandom(12)
        return base64.b64encode(nonce + self._aead.encrypt(nonce, key, key_id.encode())).decode()

    def unwrap(self, blob: str, key_id: str) -> bytes:
        raw = base64.b64decode(blob)
        try:
            return self._aead.decrypt(raw[:12], raw[12:], key_id.encode())
        except Exception:
            raise KeyError_(f"key {key_id} does not unwrap under {self.id}") from None


def new_kek_text() -> str:
    """A fresh random KEK as base64 text, for a file or an environment variable."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def write_secret_file(path: str | os.PathLike[str], text: str) -> None:
    """Write a secret atomically with mode 0600."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(p.name + f".tmp{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, p)


class KeyEntry(TypedDict):
    """One data key in the store: its wrappings, by KEK id (base64 text)."""

    created: str
    wraps: dict[str, str]


class KeyStoreDoc(TypedDict):
    """The JSON key store document."""

    version: int
    active: str
    keys: dict[str, KeyEntry]


def _new_key_id(now: datetime) -> str:
    return f"dk-{now:%Y%m%d}-{secrets.token_hex(4)}"


def _load_store(path: Path) -> KeyStoreDoc:
    try:
        doc: KeyStoreDoc = json.loads(path.read_text())
    except FileNotFoundError:
        raise KeyError_(f"no key store at {path} (create one with `masker keys create`)") from None
    except (OSError, ValueError) as exc:
        raise KeyError_(f"key store {path} is unreadable: {type(exc).__name__}") from None
    if doc.get("version") != STORE_VERSION:
        raise KeyError_(f"key store {path} has an unknown version")
    return doc


def _save_store(path: Path, doc: KeyStoreDoc) -> None:
    write_secret_file(path, json.dumps(doc, indent=2, sort_keys=True) + "\n")


def create_store(path: str | os.PathLike[str], kek: Kek, now: datetime | None = None) -> str:
    """Create a key store with one active data key and a card-index key; return the key id."""
    p = Path(path)
    if p.exists():
        raise KeyError_(f"key store {p} already exists (use `masker keys rotate`)")
    now = now or datetime.now(UTC)
    key_id = _new_key_id(now)
    doc: KeyStoreDoc = {
        "version": STORE_VERSION,
        "active": key_id,
        "keys": {
            key_id: {
                "created": now.isoformat(),
                "wraps": {kek.id: kek.wrap(os.urandom(32), key_id)},
            },
            INDEX_KEY_ID: {
                "created": now.isoformat(),
                "wraps": {kek.id: kek.wrap(os.urandom(32), INDEX_KEY_ID)},
            },
        },
    }
    _save_store(p, doc)
    return key_id


def rotate_data_key(path: str | os.PathLike[str], kek: Kek, now: datetime | None = None) -> str:
    """Add a new data key, wrapped under every KEK the store knows of, and make it active."""
    p = Path(path)
    doc = _load_store(p)
    now = now or datetime.now(UTC)
    if not any(kek.id in entry["wraps"] for entry in doc["keys"].values()):
        raise KeyError_(f"{kek.id} is not a KEK of key store {p}")
    key_id = _new_key_id(now)
    key = os.urandom(32)
    other_keks = {k for entry in doc["keys"].values() for k in entry["wraps"]} - {kek.id}
    if other_keks:
        raise KeyError_(
            "finish the KEK rotation (`masker keys retire-kek`) before a data-key rotation"
        )
    doc["keys"][key_id] = {"created": now.isoformat(), "wraps": {kek.id: kek.wrap(key, key_id)}}
    doc["active"] = key_id
    _save_store(p, doc)
    return key_id


def rewrap(path: str | os.PathLike[str], old: Kek, new: Kek) -> int:
    """Wrap every data key under ``new`` too (nodes on ``old`` keep working); return the count."""
    p = Path(path)
    doc = _load_store(p)
    for key_id, entry in doc["keys"].items():
        if old.id not in entry["wraps"]:
            raise KeyError_(f"key {key_id} is not wrapped under {old.id}")
        entry["wraps"][new.id] = new.wrap(old.unwrap(entry["wraps"][old.id], key_id), key_id)
    _save_store(p, doc)
    return len(doc["keys"])


def retire_kek(path: str | os.PathLike[str], keep: Kek) -> int:
    """Drop every wrapping except the one under ``keep``; return how many were dropped."""
    p = Path(path)
    doc = _load_store(p)
    dropped = 0
    for key_id, entry in doc["keys"].items():
        if keep.id not in entry["wraps"]:
            raise KeyError_(f"key {key_id} is not wrapped under {keep.id}: run rewrap first")
        keep.unwrap(entry["wraps"][keep.id], key_id)
        dropped += len(entry["wraps"]) - 1
        entry["wraps"] = {keep.id: entry["wraps"][keep.id]}
    _save_store(p, doc)
    return dropped


@dataclass(frozen=True)
class KeyInfo:
    key_id: str
    created: str
    active: bool
    kek_ids: tuple[str, ...]


def list_keys(path: str | os.PathLike[str]) -> list[KeyInfo]:
    doc = _load_store(Path(path))
    return [
        KeyInfo(kid, e["created"], kid == doc["active"], tuple(sorted(e["wraps"])))
        for kid, e in doc["keys"].items()
    ]


class KeyRing:
    """The unwrapped data keys of one key store, reloaded when the file changes."""

    def __init__(self, path: str | os.PathLike[str], kek: Kek) -> None:
        self._path = Path(path)
        self._kek = kek
        self._lock = threading.Lock()
        self._keys: dict[str, bytes] = {}
        self._active = ""
        self._stamp: tuple[int, int] | None = None
        self._reload()

    def __repr__(self) -> str:
        return f"KeyRing(path={str(self._path)!r}, active={self._active!r}, keys={len(self._keys)})"

    def _file_stamp(self) -> tuple[int, int]:
        st = self._path.stat()
        return st.st_mtime_ns, st.st_ino

    def _reload(self) -> None:
        with self._lock:
            stamp = self._file_stamp()
            doc = _load_store(self._path)
            keys = {}
            for key_id, entry in doc["keys"].items():
                blob = entry["wraps"].get(self._kek.id)
                if blob is None:
                    raise KeyError_(f"key {key_id} is not wrapped under {self._kek.id}")
                keys[key_id] = self._kek.unwrap(blob, key_id)
            self._keys, self._active, self._stamp = keys, doc["active"], stamp

    def _refresh_if_changed(self) -> None:
        try:
            changed = self._file_stamp() != self._stamp
        except OSError:
            return
        if changed:
            self._reload()

    @property
    def active_key_id(self) -> str:
        self._refresh_if_changed()
        return self._active

    def data_key(self, key_id: str) -> bytes:
        if key_id == INDEX_KEY_ID:
            raise KeyError_("the index key is not a data key")
        if key_id not in self._keys:
            self._refresh_if_changed()
        try:
            return self._keys[key_id]
        except KeyError:
            raise KeyError_(f"unknown data key {key_id}") from None

    def index_key(self) -> bytes:
        return self._keys[INDEX_KEY_ID]

    def key_ids(self) -> list[str]:
        return [k for k in self._keys if k != INDEX_KEY_ID]
