"""Versioned vault schemas (tokenizer/migrations) and the DSN shown in logs."""

import pytest

from tokenizer.migrations import BACKENDS, migrations, pending, sqlite_statements
from tokenizer.postgres_vault import redacted_dsn


@pytest.mark.parametrize("backend", BACKENDS)
def test_migrations_are_numbered_from_one_without_gaps(backend):
    versions = [m.version for m in migrations(backend)]
    assert versions == list(range(1, len(versions) + 1)) and versions


def test_pending_gives_only_the_migrations_past_the_current_version():
    assert [m.version for m in pending("sqlite", 1)] == [
        m.version for m in migrations("sqlite")[1:]
    ]


def test_an_unknown_backend_has_no_migrations():
    with pytest.raises(ValueError):
        migrations("oracle")


def test_a_sqlite_script_splits_into_its_statements():
    script = "-- a; comment\nCREATE TABLE a (x);\nINSERT INTO a VALUES ('1;2');\n-- end\n"
    assert [s.strip() for s in sqlite_statements(script)] == [
        "-- a; comment\nCREATE TABLE a (x);",
        "INSERT INTO a VALUES ('1;2');",
    ]


def test_a_sqlite_script_cut_inside_a_statement_is_refused():
    with pytest.raises(ValueError):
        list(sqlite_statements("CREATE TABLE a (x)"))


@pytest.mark.parametrize(
    "dsn",
    [
        "postgresql://masker:s3cret-pw@db.example:5432/vault?sslpassword=s3cret-pw",
        "host=db.example user=masker password=s3cret-pw dbname=vault",
    ],
)
def test_the_shown_dsn_keeps_the_server_and_drops_the_password(dsn):
    shown = redacted_dsn(dsn)
    assert "s3cret" not in shown and "db.example" in shown and "masker" in shown


def test_an_unparsable_dsn_is_not_echoed():
    assert "s3cret" not in redacted_dsn("password=s3cret ===")
