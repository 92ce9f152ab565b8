"""The card vault: PAN and expiry sealed with AES-256-GCM, behind a storage interface.

``VaultStore`` is the storage interface (one table of opaque records, all
queries by primary or index key, plain SQL types); ``SqliteVaultStore`` is the
embedded one-node default, ``tokenizer.postgres_vault.PostgresVaultStore`` the
vault shared by several nodes.  ``CardVault`` does the sealing: the associated
data binds each ciphertext to its token, key id and scope, so a row copied under
another token fails to open.  The CVV is never given to the vault.

One record per card and scope: the stores hold a unique (scope, fingerprint), and
``put`` is one atomic step that either inserts the record or hands back the card's
record already there, so two threads or two nodes tokenising one card at the same
instant end with one token (``CardVault.store_card`` returns the winner's).  A
write never replaces another card's record: a token already held by a different
card raises ``TokenCollision`` (the token service then takes the token's next
candidate).  The same card storing its own token again refreshes the record in
place (new seal, new expiry) and keeps its PSP token and authorisation.  The
card's expired, not yet purged record is deleted when the card is stored anew.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from tokenizer.keys import KeyRing
from tokenizer.migrations import pending, sqlite_statements
from tokenizer.sensitive import SensitiveDigits

DEFAULT_TTL_S = 24 * 3600.0
#: How long a SQLite connection waits for another connection's write lock.
SQLITE_BUSY_S = 10.0
#: Stores of a card re-sealed because another node moved the key generation meanwhile.
KEY_GENERATION_ATTEMPTS = 3


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
    """Where vault records live. Implementations must be safe to share between threads
    (and, for a shared store, between nodes)."""

    def put(self, record: VaultRecord) -> VaultRecord | None:
        """Insert the record, atomically, unless its card (scope and fingerprint) already
        has a live record: then return that record and write nothing.  None = inserted.
        TokenCollision if another card holds the token; StaleKeyGeneration if the store
        records another current data key than ``record.key_id``."""

    def refresh(self, record: VaultRecord) -> bool:
        """Re-seal and extend the record of the same token, scope and fingerprint (PSP
        results and creation time kept); False if no such record.  StaleKeyGeneration
        as for ``put``."""

    def reseal(self, token: str, from_key_id: str, key_id: str, ciphertext: bytes) -> bool:
        """Replace the ciphertext of a record still sealed under `from_key_id`."""

    def get(self, token: str) -> VaultRecord | None: ...

    def find(self, scope: str, fingerprint: str, now: float) -> VaultRecord | None: ...

    def set_psp_result(
        self, token: str, psp_token: str | None, authorisation: str | None
    ) -> bool: ...

    def purge_expired(self, now: float) -> int: ...

    def tokens_with_key(self, key_id: str) -> list[str]: ...

    def current_key_id(self) -> str | None:
        """The data key every writer must seal new records under, where the store records
        one (a shared store); None = the key ring's active key."""

    def advance_key(self, key_id: str) -> None:
        """Make `key_id` the current data key, once no write under the old one is running."""

    def resealing(self) -> AbstractContextManager[None]:
        """Held while re-encrypting: one holder at a time, across every node of the store."""

    def reachable(self) -> bool:
        """One quick query, no retries (readiness); False or an exception if it fails."""

    def close(self) -> None: ...


COLUMNS = (
    "token, key_id, scope, fingerprint, ciphertext, brand, last4, pan_length,"
    " created_at, expires_at, psp_token, psp_authorisation"
)


def record_values(record: VaultRecord) -> tuple[Any, ...]:
    """The record's column values, in ``COLUMNS`` order."""
    return (
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
    )


def refresh_values(record: VaultRecord) -> tuple[Any, ...]:
    """A refresh's values: the new key_id, ciphertext, brand and expires_at, then the
    token, scope, fingerprint, last4 and pan_length it must still match (both stores'
    refresh UPDATE, in that order)."""
    return (
        record.key_id,
        record.ciphertext,
        record.brand,
        record.expires_at,
        record.token,
        record.scope,
        record.fingerprint,
        record.last4,
        record.pan_length,
    )


def record_from_row(row: Sequence[Any] | None) -> VaultRecord | None:
    """A record from a row of ``COLUMNS``."""
    if row is None:
        return None
    token, key_id, scope, fingerprint, ciphertext, *rest = row
    return VaultRecord(token, key_id, scope, fingerprint, bytes(ciphertext), *rest)


class SqliteVaultStore:
    """Embedded vault store (one node). ``secure_delete`` zeroes purged rows in the file.
    Writes that read first run under ``BEGIN IMMEDIATE``, so they are atomic across
    every connection to the file, not only across this object's threads."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        os.close(fd)
        self._lock = threading.Lock()
        self._reseal_lock = threading.Lock()
        self._db = sqlite3.connect(
            self.path, check_same_thread=False, isolation_level=None, timeout=SQLITE_BUSY_S
        )
        self._db.execute("PRAGMA secure_delete = ON")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._migrate()

    def __repr__(self) -> str:
        return f"SqliteVaultStore(path={str(self.path)!r})"

    def _migrate(self) -> None:
        with self._lock, self._immediate():
            current = self._db.execute("PRAGMA user_version").fetchone()[0]
            for migration in pending("sqlite", current):
                for statement in sqlite_statements(migration.sql):
                    self._db.execute(statement)
                self._db.execute(f"PRAGMA user_version = {migration.version:d}")

    @contextmanager
    def _immediate(self) -> Iterator[None]:
        """A write transaction taken before its first read (caller holds ``_lock``)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def put(self, record: VaultRecord) -> VaultRecord | None:
        with self._lock, self._immediate():
            self._db.execute(
                "DELETE FROM vault WHERE scope = ? AND fingerprint = ? AND expires_at <= ?",
                (record.scope, record.fingerprint, record.created_at),
            )
            cur = self._db.execute(
                f"INSERT INTO vault ({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)"
                " ON CONFLICT DO NOTHING",
                record_values(record),
            )
            if cur.rowcount == 1:
                return None
            held = record_from_row(
                self._db.execute(
                    f"SELECT {COLUMNS} FROM vault WHERE scope = ? AND fingerprint = ?",
                    (record.scope, record.fingerprint),
                ).fetchone()
            )
            if held is None:
                raise TokenCollision(f"token {record.token} is already in the vault")
            return held

    def refresh(self, record: VaultRecord) -> bool:
        with self._lock:
            cur = self._db.execute(
                "UPDATE vault SET key_id = ?, ciphertext = ?, brand = ?, expires_at = ?"
                " WHERE token = ? AND scope = ? AND fingerprint = ? AND last4 = ?"
                " AND pan_length = ?",
                refresh_values(record),
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
            cur = self._db.execute(f"SELECT {COLUMNS} FROM vault WHERE token = ?", (token,))
            return record_from_row(cur.fetchone())

    def find(self, scope: str, fingerprint: str, now: float) -> VaultRecord | None:
        with self._lock:
            cur = self._db.execute(
                f"SELECT {COLUMNS} FROM vault WHERE scope = ? AND fingerprint = ?"
                " AND expires_at > ?",
                (scope, fingerprint, now),
            )
            return record_from_row(cur.fetchone())

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

    def current_key_id(self) -> str | None:
        return None  # one node: its key store's active key is the current one

    def advance_key(self, key_id: str) -> None:
        return None

    @contextmanager
    def resealing(self) -> Iterator[None]:
        with self._reseal_lock:  # one file, one node: re-encryptions of this process
            yield

    def reachable(self) -> bool:
        with self._lock:
            self._db.execute("SELECT 1 FROM vault LIMIT 1").fetchall()
            return True

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


class StaleKeyGeneration(VaultError):
    """The record was sealed under another data key than the store's current one (another
    node moved the generation on): nothing was written; seal under ``current`` instead."""

    def __init__(self, current: str) -> None:
        super().__init__(f"the vault's current data key is {current}")
        self.current = current


class VaultUnavailable(VaultError):
    """The store could not be reached within its retry budget."""


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

    @property
    def active_key_id(self) -> str:
        """The data key new records are sealed under: the store's current one where it
        records one (every node agrees on it), else the key ring's active key."""
        return self.store.current_key_id() or self.keyring.active_key_id

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
        """Store the card under `token` and return the card's record: a new one, the
        refreshed record of the same card under its own token, or the record another
        writer stored for the card a moment before (its token wins).  Raises
        TokenCollision, writing nothing, when a different card holds the token."""
        key_id = self.active_key_id
        for _ in range(KEY_GENERATION_ATTEMPTS):
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
                return self._store(record)
            except StaleKeyGeneration as moved:
                key_id = moved.current
        raise VaultError("the vault's data-key generation kept moving; card not stored")

    def _store(self, record: VaultRecord) -> VaultRecord:
        held = self.store.put(record)
        if held is None:
            return record
        if held.token != record.token or not self.store.refresh(record):
            return held  # the card's record, written by another thread or node first
        stored = self.store.get(record.token)
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
        """Re-seal every record under ``from_key_id`` with the key ring's active key; return
        the count.  One re-encryption at a time across every node of the store; it first
        makes the active key the store's current one, so no node seals under the old key
        once the scan starts and none is left behind."""
        with self.store.resealing():
            active = self.keyring.active_key_id
            self.store.advance_key(active)
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
