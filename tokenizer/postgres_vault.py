"""The vault on PostgreSQL: one store shared by every masker node (psycopg 3 + its pool).

Same guarantees as ``SqliteVaultStore``: the store keeps only what ``CardVault``
gives it (AES-256-GCM ciphertext with token, key id and scope bound in, keyed
fingerprints, tokens, brand and last four), so no table, WAL segment or server log
line can hold clear card data: no statement carries any, not even as a parameter.

One card, one token, on every node.  ``vault_card`` is a unique (scope,
fingerprint); ``put`` deletes the card's expired record, then ``INSERT ... ON
CONFLICT DO NOTHING`` and, when nothing was inserted, reads the card's record in
the same transaction.  A writer racing another for one card waits on the other's
uncommitted row and then gets that row's token; a token held by another card is a
``TokenCollision``.  No unique violation is ever raised, so the server log stays
free of failed statements.

Which data key seals new records, agreed by every node.  Every node reads the same
key store (keys.json, distributed to every node with the same KEK), so every node
can open every record; which key *seals* is recorded in the vault itself, in
``vault_key_generation``, and not taken from each node's copy of the key file
(those change at different moments during a rollout).  The first write records
the writer's active key; after that a node seals under the vault's key, and a
write sealed under another (``put``, ``refresh``) is refused with
``StaleKeyGeneration`` and re-sealed by ``CardVault``.  The generation moves only in
``CardVault.reencrypt`` (``masker keys rotate``, distribute keys.json to every node,
then re-encrypt on one node): ``advance_key`` takes the generation advisory lock
exclusively, so it waits for every write still running under the old key (each
holds it shared for its transaction) and no old-key record appears once the scan
starts.  Re-encryption itself holds a session advisory lock, so two nodes never
re-seal the same records concurrently; a second one waits and finds nothing left.

Migrations (``tokenizer/migrations/postgres``) run at start under an advisory lock
and are recorded in ``vault_schema_version``: N nodes starting at once migrate once.

Connection loss (a restarted or failed-over server): every operation is one
idempotent transaction, retried with bounded exponential backoff on
``psycopg.OperationalError`` (the pool replaces broken connections) for up to
``retry_s`` seconds (15 by default), then ``VaultUnavailable``.  A retried ``put``
whose first attempt did commit finds its own record and keeps its token: no token
is issued twice and none is lost.  The DSN's password never reaches a log line, repr or
exception (``redacted_dsn``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TypeVar

import psycopg
import structlog
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow
from psycopg_pool import ConnectionPool

from tokenizer.migrations import pending
from tokenizer.vault import (
    COLUMNS,
    StaleKeyGeneration,
    TokenCollision,
    VaultError,
    VaultRecord,
    VaultUnavailable,
    record_from_row,
    record_values,
    refresh_values,
)

log = structlog.get_logger(__name__)

T = TypeVar("T")
Conn = psycopg.Connection[TupleRow]

#: Advisory locks are (namespace, key) pairs; the namespace spells "mask".
LOCK_NAMESPACE = 0x6D61736B
MIGRATION_LOCK = 1
RESEAL_LOCK = 2
KEY_GENERATION_LOCK = 3

#: Long enough to ride out a restart or fail-over, short enough that a capture waiting
#: on a dead server fails visibly (retryable from the desktop) instead of hanging.
DEFAULT_RETRY_S = 15.0
RETRY_FIRST_S = 0.05
RETRY_MAX_S = 2.0
POOL_SIZE = 4
CONNECT_TIMEOUT_S = 5
POOL_WAIT_S = 5.0
REACHABLE_WAIT_S = 1.0

_SECRET_PARAMS = ("password", "sslpassword")
_PLACEHOLDERS = ", ".join(["%s"] * len(COLUMNS.split(",")))


def redacted_dsn(dsn: str) -> str:
    """The DSN as a keyword string without its password, for logs and reprs."""
    try:
        params = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparsable dsn>"
    for name in _SECRET_PARAMS:
        params.pop(name, None)
    return make_conninfo("", **params)


class PostgresVaultStore:
    """``VaultStore`` on a PostgreSQL database shared by several nodes."""

    def __init__(
        self, dsn: str, *, retry_s: float = DEFAULT_RETRY_S, pool_size: int = POOL_SIZE
    ) -> None:
        self._where = redacted_dsn(dsn)
        self._retry_s = retry_s
        self._pool = ConnectionPool(
            dsn,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_S},
            timeout=max(min(POOL_WAIT_S, retry_s), 0.1),  # a wait for a connection
            open=False,
            name="vault",
        )
        self._pool.open(wait=False)
        try:
            self._retrying(self._migrate)
        except psycopg.Error as exc:  # no rights to create tables, a broken schema, ...
            self._pool.close()
            raise VaultError(
                f"PostgreSQL vault ({self._where}): migration failed"
                f" ({type(exc).__name__}, SQLSTATE {exc.sqlstate})"
            ) from None
        except BaseException:
            self._pool.close()
            raise

    def __repr__(self) -> str:
        return f"PostgresVaultStore({self._where})"

    # --- plumbing --------------------------------------------------------------------
    def _retrying(self, op: Callable[[Conn], T]) -> T:
        """Run `op` on a pooled connection, again after a connection loss, for up to
        ``retry_s`` seconds (bounded exponential backoff)."""
        deadline = time.monotonic() + self._retry_s
        delay = RETRY_FIRST_S
        while True:
            try:
                with self._pool.connection() as conn:
                    return op(conn)
            except psycopg.OperationalError as exc:
                error = type(exc).__name__
                if time.monotonic() + delay > deadline:
                    log.error("vault_unavailable", store=self._where, error=error)
                    raise VaultUnavailable(
                        f"PostgreSQL vault ({self._where}) unreachable for {self._retry_s:g} s"
                        f" ({error})"
                    ) from None
                log.warning("vault_retry", store=self._where, error=error, in_s=delay)
                time.sleep(delay)
                delay = min(delay * 2, RETRY_MAX_S)

    @staticmethod
    def _migrate(conn: Conn) -> None:
        conn.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_NAMESPACE, MIGRATION_LOCK))
        try:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS vault_schema_version (version integer PRIMARY KEY,"
                " name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
            )
            row = conn.execute(
                "SELECT coalesce(max(version), 0) FROM vault_schema_version"
            ).fetchone()
            current = int(row[0]) if row else 0
            for migration in pending("postgres", current):
                with conn.transaction():
                    conn.execute(migration.sql.encode())  # no parameters: a whole script
                    conn.execute(
                        "INSERT INTO vault_schema_version (version, name) VALUES (%s, %s)",
                        (migration.version, migration.name),
                    )
                log.info("vault_migrated", version=migration.version, name=migration.name)
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_NAMESPACE, MIGRATION_LOCK))

    @staticmethod
    def _check_generation(conn: Conn, key_id: str) -> None:
        """Inside a write transaction: hold the generation lock shared until commit and
        refuse a seal under anything but the current key (recording `key_id` as current
        if the vault has none yet)."""
        conn.execute(
            "SELECT pg_advisory_xact_lock_shared(%s, %s)", (LOCK_NAMESPACE, KEY_GENERATION_LOCK)
        )
        conn.execute(
            "INSERT INTO vault_key_generation (key_id) VALUES (%s) ON CONFLICT DO NOTHING",
            (key_id,),
        )
        row = conn.execute("SELECT key_id FROM vault_key_generation").fetchone()
        current = str(row[0]) if row else key_id
        if current != key_id:
            raise StaleKeyGeneration(current)

    # --- VaultStore ------------------------------------------------------------------
    def put(self, record: VaultRecord) -> VaultRecord | None:
        def op(conn: Conn) -> VaultRecord | None:
            with conn.transaction():
                self._check_generation(conn, record.key_id)
                conn.execute(
                    "DELETE FROM vault WHERE scope = %s AND fingerprint = %s AND expires_at <= %s",
                    (record.scope, record.fingerprint, record.created_at),
                )
                cur = conn.execute(
                    f"INSERT INTO vault ({COLUMNS}) VALUES ({_PLACEHOLDERS})"
                    " ON CONFLICT DO NOTHING",
                    record_values(record),
                )
                if cur.rowcount == 1:
                    return None
                held = conn.execute(
                    f"SELECT {COLUMNS} FROM vault WHERE scope = %s AND fingerprint = %s",
                    (record.scope, record.fingerprint),
                ).fetchone()
            if held is None:
                raise TokenCollision(f"token {record.token} is already in the vault")
            return record_from_row(held)

        return self._retrying(op)

    def refresh(self, record: VaultRecord) -> bool:
        def op(conn: Conn) -> bool:
            with conn.transaction():
                self._check_generation(conn, record.key_id)
                cur = conn.execute(
                    "UPDATE vault SET key_id = %s, ciphertext = %s, brand = %s, expires_at = %s"
                    " WHERE token = %s AND scope = %s AND fingerprint = %s AND last4 = %s"
                    " AND pan_length = %s",
                    refresh_values(record),
                )
                return cur.rowcount == 1

        return self._retrying(op)

    def reseal(self, token: str, from_key_id: str, key_id: str, ciphertext: bytes) -> bool:
        return self._update(
            "UPDATE vault SET key_id = %s, ciphertext = %s WHERE token = %s AND key_id = %s",
            (key_id, ciphertext, token, from_key_id),
        )

    def get(self, token: str) -> VaultRecord | None:
        return self._one(f"SELECT {COLUMNS} FROM vault WHERE token = %s", (token,))

    def find(self, scope: str, fingerprint: str, now: float) -> VaultRecord | None:
        return self._one(
            f"SELECT {COLUMNS} FROM vault WHERE scope = %s AND fingerprint = %s"
            " AND expires_at > %s",
            (scope, fingerprint, now),
        )

    def set_psp_result(self, token: str, psp_token: str | None, authorisation: str | None) -> bool:
        return self._update(
            "UPDATE vault SET psp_token = %s, psp_authorisation = %s WHERE token = %s",
            (psp_token, authorisation, token),
        )

    def purge_expired(self, now: float) -> int:
        return self._retrying(
            lambda conn: conn.execute("DELETE FROM vault WHERE expires_at <= %s", (now,)).rowcount
        )

    def tokens_with_key(self, key_id: str) -> list[str]:
        return self._retrying(
            lambda conn: [
                str(r[0])
                for r in conn.execute("SELECT token FROM vault WHERE key_id = %s", (key_id,))
            ]
        )

    def current_key_id(self) -> str | None:
        row = self._retrying(
            lambda conn: conn.execute("SELECT key_id FROM vault_key_generation").fetchone()
        )
        return str(row[0]) if row else None

    def advance_key(self, key_id: str) -> None:
        def op(conn: Conn) -> None:
            with conn.transaction():
                conn.execute(
                    "SELECT pg_advisory_xact_lock(%s, %s)", (LOCK_NAMESPACE, KEY_GENERATION_LOCK)
                )
                conn.execute(
                    "INSERT INTO vault_key_generation (key_id) VALUES (%s) ON CONFLICT (only_row)"
                    " DO UPDATE SET key_id = excluded.key_id, changed_at = now()"
                    " WHERE vault_key_generation.key_id <> excluded.key_id",
                    (key_id,),
                )

        self._retrying(op)
        log.info("vault_key_generation", key_id=key_id)

    @contextmanager
    def resealing(self) -> Iterator[None]:
        with self._pool.connection() as conn:
            conn.execute("SELECT pg_advisory_lock(%s, %s)", (LOCK_NAMESPACE, RESEAL_LOCK))
            try:
                yield
            finally:
                if not conn.broken:
                    conn.execute("SELECT pg_advisory_unlock(%s, %s)", (LOCK_NAMESPACE, RESEAL_LOCK))

    def reachable(self) -> bool:
        try:
            with self._pool.connection(timeout=REACHABLE_WAIT_S) as conn:
                conn.execute("SELECT 1 FROM vault LIMIT 1")
                return True
        except psycopg.Error:
            return False

    def close(self) -> None:
        self._pool.close()

    # --- helpers ---------------------------------------------------------------------
    def _one(self, query: str, params: tuple[object, ...]) -> VaultRecord | None:
        return self._retrying(lambda conn: record_from_row(conn.execute(query, params).fetchone()))

    def _update(self, query: str, params: tuple[object, ...]) -> bool:
        return self._retrying(lambda conn: conn.execute(query, params).rowcount == 1)
