"""The card vault: PAN and expiry sealed with AES-256-GCM, behind a storage interface.

``VaultStore`` is the storage interface (one table of opaque records, all
queries by primary or index key, plain SQL types) so a PostgreSQL store can
implement it later; ``SqliteVaultStore`` is the embedded default.
``CardVault`` does the sealing: the associated data binds each ciphertext to
its token, key id and scope, so a row copied under another token fails to open.
The CVV is never given to the vault.

A write never replaces another card's record: a new record is a plain INSERT and
a token already held by a different card (another scope or fingerprint) raises
``TokenCollision`` (the token service then takes the token's next candidate).  The
same card storing its own token again refreshes the record in place (new seal,
new expiry) and keeps its PSP token and authorisation.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tokenizer.keys import KeyRing
from tokenizer.sensitive import SensitiveDigits

DEFAULT_TTL_S = 24 * 3600.0


@dataclass(frozen=True)
class VaultRecord:
    """One stored card. Only the ciphertext holds card data; brand and last four are public.
    The fingerprint (a keyed hash of the PAN) stays out of repr like the ciphertext."""

    token: str
    key_id: str
    scope: str
    fingerprint: str = field(repr=False)
    ciphertext: bytes = field(repr=False)
    brand: str
    last4: str
    pan_length: int
    created_at: float
    expires_at: float
    psp_token: str | None = None
    psp_authorisation: str | None = None


class VaultStore(Protocol):
    """Where vault records live. Implementations must be safe to share between threads."""

    def put(self, record: VaultRecord) -> None:
        """Insert a new record; TokenCollision if its token is already stored."""

    def refresh(self, record: VaultRecord) -> bool:
        """Re-seal and extend the record of the same token, scope and fingerprint (PSP
        results and creation time kept); False if no such record."""

    def reseal(self, token: str, from_key_id: str, key_id: str, ciphertext: bytes) -> bool:
        """Replace the ciphertext of a record still sealed under `from_key_id`."""

    def get(self, token: str) -> VaultRecord | None: ...

    def find(self, scope: str, fingerprint: str, now: float) -> VaultRecord | None: ...

    def set_psp_result(
        self, token: str, psp_token: str | None, authorisation: str | None
    ) -> bool: ...

    def purge_expired(self, now: float) -> int: ...

    def tokens_with_key(self, key_id: str) -> list[str]: ...

    def close(self) -> None: ...


_SCHEMA = """
CREATE TABLE IF NOT EXISTS vault (
    token TEXT PRIMARY KEY,
    key_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    ciphertext BLOB NOT NULL,
    brand TEXT NOT NULL,
    last4 TEXT NOT NULL,
    pan_length INTEGER NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    psp_token TEXT,
    psp_authorisation TEXT
);
CREATE INDEX IF NOT EXISTS vault_card ON vault (scope, fingerprint);
CREATE INDEX IF NOT EXISTS vault_expiry ON vault (expires_at);
CREATE INDEX IF NOT EXISTS vault_key ON vault (key_id);
"""

_COLUMNS = (
    "token, key_id, scope, fingerprint, ciphertext, brand, last4, pan_length,"
    " created_at, expires_at, psp_token, psp_authorisation"
)


class SqliteVaultStore:
    """Embedded vault store. ``secure_delete`` zeroes purged rows in the file."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA secure_delete = ON")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.executescript(_SCHEMA)

    def __repr__(self) -> str:
        return f"SqliteVaultStore(path={str(self.path)!r})"

    @staticmethod
    def _row(row: tuple[Any, ...] | None) -> VaultRecord | None:
        if row is None:
            return None
        token, key_id, scope, fingerprint, ciphertext, *rest = row
        return VaultRecord(token, key_id, scope, fingerprint, bytes(ciphertext), *rest)

    def put(self, record: VaultRecord) -> None:
        with self._lock:
            try:
                self._db.execute(
                    f"INSERT INTO vault ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                    (
                        record.token,
                        record.key_id,
                        record.scope,
                        record.fingerprint,
                        record.ciphertext,
                        record.brand,
                        record.last4,
                        record.pan_length,
                        record.created_at,
                        record.expires_at,
                        record.psp_token,
                        record.psp_authorisation,
                    ),
                )
            except sqlite3.IntegrityError:
                raise TokenCollision(f"token {record.token} is already in the vault") from None

    def refresh(self, record: VaultRecord) -> bool:
        with self._lock:
            cur = self._db.execute(
                "UPDATE vault SET key_id = ?, ciphertext = ?, brand = ?, expires_at = ?"
                " WHERE token = ? AND scope = ? AND fingerprint = ? AND last4 = ?"
                " AND pan_length = ?",
                (
                    record.key_id,
                    record.ciphertext,
                    record.brand,
                    record.expires_at,
                    record.token,
                    record.scope,
                    record.fingerprint,
                    record.last4,
                    record.pan_length,
                ),
            )
            return cur.rowcount == 1

    def reseal(self, token: str, from_key_id: str, key_id: str, ciphertext: bytes) -> bool:
        with self._lock:
            cur = self._db.execute(
                "UPDATE vault SET key_id = ?, ciphertext = ? WHERE token = ? AND key_id = ?",
                (key_id, ciphertext, token, from_key_id),
            )
            return cur.rowcount == 1

    def get(self, token: str) -> VaultRecord | None:
        with self._lock:
            cur = self._db.execute(f"SELECT {_COLUMNS} FROM vault WHERE token = ?", (token,))
            return self._row(cur.fetchone())

    def find(self, scope: str, fingerprint: str, now: float) -> VaultRecord | None:
        with self._lock:
            cur = self._db.execute(
                f"SELECT {_COLUMNS} FROM vault WHERE scope = ? AND fingerprint = ?"
                " AND expires_at > ? ORDER BY created_at DESC LIMIT 1",
                (scope, fingerprint, now),
            )
            return self._row(cur.fetchone())

    def set_psp_result(self, token: str, psp_token: str | None, authorisation: str | None) -> bool:
        with self._lock:
            cur = self._db.execute(
                "UPDATE vault SET psp_token = ?, psp_authorisation = ? WHERE token = ?",
                (psp_token, authorisation, token),
            )
            return cur.rowcount == 1

    def purge_expired(self, now: float) -> int:
        with self._lock:
            cur = self._db.execute("DELETE FROM vault WHERE expires_at <= ?", (now,))
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            return cur.rowcount

    def tokens_with_key(self, key_id: str) -> list[str]:
        with self._lock:
            cur = self._db.execute("SELECT token FROM vault WHERE key_id = ?", (key_id,))
            return [r[0] for r in cur.fetchall()]

    def close(self) -> None:
        with self._lock:
            self._db.close()


@dataclass
class CardData:
    """Clear card data opened from the vault; wipe it as soon as it is used."""

    pan: SensitiveDigits
    expiry: SensitiveDigits
    brand: str
    psp_token: str | None = None

    def wipe(self) -> None:
        self.pan.wipe()
        self.expiry.wipe()


class VaultError(Exception):
    """A vault problem; messages name tokens and key ids only."""


class TokenCollision(VaultError):
    """The token is already held by another record: nothing was written."""


def _aad(token: str, key_id: str, scope: str) -> bytes:
    return f"{token}\x1f{key_id}\x1f{scope}".encode()


class CardVault:
    """Seals and opens card records with the key ring's data keys."""

    def __init__(self, store: VaultStore, keyring: KeyRing, ttl_s: float = DEFAULT_TTL_S) -> None:
        self.store = store
        self.keyring = keyring
        self.ttl_s = ttl_s

    def __repr__(self) -> str:
        return f"CardVault(store={self.store!r}, ttl_s={self.ttl_s})"

    def _seal(
        self, token: str, key_id: str, scope: str, pan: SensitiveDigits, expiry: SensitiveDigits
    ) -> bytes:
        plain = bytearray(pan.reveal_bytes() + b"|" + expiry.reveal_bytes())
        try:
            nonce = os.urandom(12)
            aead = AESGCM(self.keyring.data_key(key_id))
            return nonce + aead.encrypt(nonce, bytes(plain), _aad(token, key_id, scope))
        finally:
            plain[:] = bytes(len(plain))

    def store_card(
        self,
        *,
        token: str,
        scope: str,
        fingerprint: str,
        pan: SensitiveDigits,
        expiry: SensitiveDigits,
        brand: str,
        now: float,
    ) -> VaultRecord:
        """Store the card under `token`: a new record, or the refreshed record of the same
        card (same scope and fingerprint) under its own token.  Raises TokenCollision,
        writing nothing, when a different card holds the token."""
        key_id = self.keyring.active_key_id
        record = VaultRecord(
            token=token,
            key_id=key_id,
            scope=scope,
            fingerprint=fingerprint,
            ciphertext=self._seal(token, key_id, scope, pan, expiry),
            brand=brand,
            last4=pan.last(4),
            pan_length=len(pan),
            created_at=now,
            expires_at=now + self.ttl_s,
        )
        try:
            self.store.put(record)
            return record
        except TokenCollision:
            if not self.store.refresh(record):
                raise  # another card's token: never overwritten
        stored = self.store.get(token)
        return stored if stored is not None else record

    def open(self, token: str, now: float) -> CardData:
        record = self.store.get(token)
        if record is None or record.expires_at <= now:
            raise VaultError(f"no live vault record for token {token}")
        return self._open(record)

    def _open(self, record: VaultRecord) -> CardData:
        raw = record.ciphertext
        try:
            aead = AESGCM(self.keyring.data_key(record.key_id))
            plain = bytearray(
                aead.decrypt(raw[:12], raw[12:], _aad(record.token, record.key_id, record.scope))
            )
        except VaultError:
            raise
        except Exception:
            raise VaultError(f"vault record for token {record.token} does not open") from None
        try:
            sep = plain.index(b"|")
            return CardData(
                SensitiveDigits(plain[:sep]),
                SensitiveDigits(plain[sep + 1 :]),
                record.brand,
                record.psp_token,
            )
        finally:
            plain[:] = bytes(len(plain))

    def reencrypt(self, from_key_id: str) -> int:
        """Re-seal every record under ``from_key_id`` with the active key; return the count."""
        active = self.keyring.active_key_id
        count = 0
        for token in self.store.tokens_with_key(from_key_id):
            record = self.store.get(token)
            if record is None or record.key_id == active:
                continue
            card = self._open(record)
            try:
                sealed = self._seal(record.token, active, record.scope, card.pan, card.expiry)
            finally:
                card.wipe()
            if self.store.reseal(record.token, record.key_id, active, sealed):
                count += 1
        return count

    def purge_expired(self, now: float) -> int:
        return self.store.purge_expired(now)
