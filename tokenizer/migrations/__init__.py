"""Versioned vault schemas: one folder of numbered SQL files per backend.

``NNNN_name.sql`` files are applied in order, each once, each in its own
transaction; the store records the version reached (SQLite: ``PRAGMA
user_version``; PostgreSQL: the ``vault_schema_version`` table, written under an
advisory lock so nodes starting together migrate once).  A released file is never
edited: a change is a new file.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources

BACKENDS = ("sqlite", "postgres")
_FILE_NAME = re.compile(r"(\d{4})_(\w+)\.sql")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations(backend: str) -> tuple[Migration, ...]:
    """Every migration of `backend`, in version order (versions 1, 2, ... without gaps)."""
    if backend not in BACKENDS:
        raise ValueError(f"no migrations for backend {backend!r}")
    found = []
    for entry in (resources.files(__name__) / backend).iterdir():
        match = _FILE_NAME.fullmatch(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise ValueError(f"{backend} migrations are not numbered 1..{len(found)}")
    return tuple(found)


def pending(backend: str, current: int) -> tuple[Migration, ...]:
    """The migrations of `backend` past version `current`."""
    return tuple(m for m in migrations(backend) if m.version > current)


def sqlite_statements(script: str) -> Iterator[str]:
    """The statements of a SQLite script, one by one (``executescript`` would commit
    the transaction the migration runs in)."""
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            yield statement
            statement = ""
    rest = [ln for ln in statement.splitlines() if ln.strip() and not ln.strip().startswith("--")]
    if rest:
        raise ValueError("SQL script ends inside a statement (missing ';')")
