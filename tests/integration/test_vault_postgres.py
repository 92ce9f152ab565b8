"""The PostgreSQL vault (issue 11, part 2): one vault for every node, on a real server.

Each test gets a fresh database on one server per module (tests/support/postgres);
a "node" is what each `masker serve` builds: its own PostgresVaultStore and key ring
over the key store file every node shares.
"""

from __future__ import annotations

import itertools
import os
import random
import re
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import psycopg
import pytest
from structlog.testing import capture_logs

from masker.runtime.service import Service
from masker.runtime.service_config import load_config
from tests.support.cards import SCAN_CVV, SCAN_EXPIRY, SCAN_PAN, kek_from_seed, kek_text, sd
from tests.support.postgres import PostgresServer, postgres_available, running_postgres
from tokenizer import TokenizerConfig, build_tokenizer
from tokenizer.clock import ManualClock
from tokenizer.keys import KeyRing, create_store, rotate_data_key
from tokenizer.luhn import luhn_check_digit
from tokenizer.migrations import migrations
from tokenizer.postgres_vault import KEY_GENERATION_LOCK, LOCK_NAMESPACE, PostgresVaultStore
from tokenizer.token_service import TokenService
from tokenizer.vault import CardVault, StaleKeyGeneration, VaultError, VaultUnavailable

pytestmark = pytest.mark.skipif(
    not postgres_available(), reason="Debian's postgresql server is not installed"
)

KEK = kek_from_seed(7)
_databases = itertools.count()


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with running_postgres() as server:
        yield server


def superuser(dsn: str) -> str:
    return dsn.replace("postgresql://masker@", "postgresql://postgres@", 1)


@pytest.fixture
def vault_dsn(pg: PostgresServer) -> str:
    """A fresh, empty database on the module's server, owned by the masker role."""
    name = f"vault_{next(_databases)}"
    with psycopg.connect(superuser(pg.dsn), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name} OWNER masker")
    return pg.dsn.rsplit("/", 1)[0] + "/" + name


@pytest.fixture
def keys(tmp_path: Path) -> Path:
    """The key store every node reads (distributed to each node in production)."""
    path = tmp_path / "keys.json"
    create_store(path, KEK)
    return path


@dataclass
class Node:
    dsn: str
    store: PostgresVaultStore
    vault: CardVault
    tokens: TokenService


def node(dsn: str, keys: Path, kind: str = "vault") -> Node:
    store = PostgresVaultStore(dsn)
    vault = CardVault(store, KeyRing(keys, KEK))
    return Node(dsn, store, vault, TokenService(vault, kind=kind, scope="m1"))


@pytest.fixture
def nodes(vault_dsn: str, keys: Path, request: pytest.FixtureRequest) -> Iterator[list[Node]]:
    """Two nodes on one vault (token kind from the test's `kind` parameter, else vault)."""
    kind = getattr(request, "param", "vault")
    pair = [node(vault_dsn, keys, kind), node(vault_dsn, keys, kind)]
    yield pair
    for n in pair:
        n.store.close()


def cards(seed: int, n: int) -> list[str]:
    """`n` distinct Luhn-valid 16-digit Visa-range numbers."""
    rng = random.Random(seed)
    out: set[str] = set()
    while len(out) < n:
        partial = f"4{rng.randrange(10**14):014d}"
        out.add(partial + luhn_check_digit(partial))
    return sorted(out)


def run_threads(targets: list[threading.Thread], timeout_s: float = 120.0) -> None:
    for t in targets:
        t.start()
    for t in targets:
        t.join(timeout_s)
    assert not any(t.is_alive() for t in targets), "a worker thread hung"


def rows(dsn: str, query: str) -> list[tuple]:
    with psycopg.connect(dsn) as conn:
        return conn.execute(query).fetchall()


def assert_one_token_per_card_that_opens_to_it(
    issued: list[tuple[str, str]], opener: CardVault, dsn: str
) -> None:
    tokens: dict[str, set[str]] = defaultdict(set)
    for pan, token in issued:
        tokens[pan].add(token)
    assert {pan: len(t) for pan, t in tokens.items() if len(t) != 1} == {}
    now = time.time()
    wrong = [pan for pan, (token,) in tokens.items() if opener.open(token, now).pan.reveal() != pan]
    assert wrong == []
    assert rows(dsn, "SELECT count(*) FROM vault") == [(len(tokens),)]


# --- one card, one token --------------------------------------------------------------
@pytest.mark.parametrize("nodes", ["vault", "fpe"], indirect=True)
def test_two_nodes_tokenising_the_same_cards_at_once_issue_one_token_per_card(nodes, vault_dsn):
    deck = cards(11, 12)
    start = threading.Barrier(8)
    issued: list[tuple[str, str]] = []

    def work(n: Node, seed: int) -> None:
        order = deck * 3
        random.Random(seed).shuffle(order)
        start.wait()
        for pan in order:
            issued.append((pan, n.tokens.issue(sd(pan), sd("1230"), "visa").token))

    run_threads([threading.Thread(target=work, args=(nodes[i % 2], i)) for i in range(8)])
    assert len(issued) == 8 * 36
    assert_one_token_per_card_that_opens_to_it(issued, nodes[1].vault, vault_dsn)


def test_a_restarted_server_loses_no_token_and_issues_none_twice(pg, nodes, vault_dsn):
    """`pg_ctl stop -m fast` + start while six threads on two nodes tokenise: every card
    is issued by one thread on each node, in its own order."""
    deck = cards(12, 300)
    shares = [deck[k::3] for k in range(3)]
    issued: list[tuple[str, str]] = []
    failures: list[str] = []

    def work(n: Node, share: list[str], seed: int) -> None:
        order = share[:]
        random.Random(seed).shuffle(order)
        for pan in order:
            try:
                issued.append((pan, n.tokens.issue(sd(pan), sd("1230"), "visa").token))
            except Exception as exc:
                failures.append(type(exc).__name__)

    workers = [
        threading.Thread(target=work, args=(nodes[i // 3], shares[i % 3], i)) for i in range(6)
    ]
    with capture_logs() as logs:
        for t in workers:
            t.start()
        deadline = time.monotonic() + 60
        while len(issued) < 60 and time.monotonic() < deadline:
            time.sleep(0.01)
        pg.stop("fast")
        stopped_at = len(issued)
        time.sleep(0.5)
        pg.start()
        for t in workers:
            t.join(120)
    retries = [e for e in logs if e.get("event") == "vault_retry"]
    assert failures == [] and not any(t.is_alive() for t in workers)
    assert stopped_at < 600 and retries, "the restart did not hit running tokenisations"
    assert len(issued) == 600
    assert_one_token_per_card_that_opens_to_it(issued, nodes[0].vault, vault_dsn)


def test_readiness_sees_a_stopped_server_and_its_return(pg, vault_dsn):
    store = PostgresVaultStore(vault_dsn)
    try:
        assert store.reachable()
        pg.stop("fast")
        try:
            down = store.reachable()
        finally:
            pg.start()
        deadline = time.monotonic() + 20
        while not store.reachable() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert down is False and store.reachable()
    finally:
        store.close()


def test_an_unreachable_vault_gives_up_within_its_budget_without_showing_the_password():
    dsn = "postgresql://masker:s3cret-pw@127.0.0.1:1/masker"  # nothing listens on port 1
    started = time.monotonic()
    with pytest.raises(VaultUnavailable) as failed:
        PostgresVaultStore(dsn, retry_s=0.5)
    assert time.monotonic() - started < 10
    assert "s3cret" not in str(failed.value) and "127.0.0.1" in str(failed.value)


def test_the_service_builds_its_vault_on_postgresql_and_is_ready(vault_dsn, tmp_path):
    cfg = load_config(
        None,
        env={
            "MASKER_TOKENIZER_VAULT_BACKEND": "postgresql",
            "MASKER_TOKENIZER_VAULT_DSN": vault_dsn,
            "MASKER_TOKENIZER_KEYS_DIR": str(tmp_path / "keys"),
            "MASKER_TOKENIZER_VAULT_PATH": str(tmp_path / "unused" / "v.sqlite"),
        },
    )
    svc = Service(cfg)
    try:
        assert isinstance(svc.tokenizer.store, PostgresVaultStore)
        assert svc.ready_checks()["vault"]() is True
        assert not (tmp_path / "unused").exists()  # no SQLite file on a PostgreSQL node
    finally:
        svc.tokenizer.close()


# --- migrations ------------------------------------------------------------------------
def test_a_database_the_role_may_not_create_tables_in_is_a_clear_error(pg):
    with psycopg.connect(superuser(pg.dsn), autocommit=True) as conn:
        conn.execute("CREATE DATABASE not_ours")  # owned by postgres: no CREATE for masker
    with pytest.raises(VaultError, match="migration failed"):
        PostgresVaultStore(pg.dsn.rsplit("/", 1)[0] + "/not_ours", retry_s=5)


def test_nodes_starting_together_migrate_once(vault_dsn):
    start = threading.Barrier(6)
    stores: list[PostgresVaultStore] = []

    def open_store() -> None:
        start.wait()
        stores.append(PostgresVaultStore(vault_dsn))

    with capture_logs() as logs:
        run_threads([threading.Thread(target=open_store) for _ in range(6)])
    for s in stores:
        s.close()
    applied = [e["version"] for e in logs if e.get("event") == "vault_migrated"]
    expected = [m.version for m in migrations("postgres")]
    assert len(stores) == 6 and applied == expected
    assert rows(vault_dsn, "SELECT version FROM vault_schema_version ORDER BY 1") == [
        (v,) for v in expected
    ]


def test_reopening_a_migrated_vault_changes_nothing(vault_dsn, keys):
    first = node(vault_dsn, keys)
    token = first.tokens.issue(sd(SCAN_PAN), sd("1230"), "visa").token
    first.store.close()
    with capture_logs() as logs:
        again = node(vault_dsn, keys)
    try:
        assert [e for e in logs if e.get("event") == "vault_migrated"] == []
        assert again.vault.open(token, time.time()).pan.reveal() == SCAN_PAN
        assert len(rows(vault_dsn, "SELECT * FROM vault_schema_version")) == len(
            migrations("postgres")
        )
    finally:
        again.store.close()


# --- key rotation across nodes --------------------------------------------------------
def test_nodes_seal_under_the_vaults_key_until_reencryption_moves_it(nodes, keys, vault_dsn):
    a, b = nodes
    deck = cards(13, 3)
    first = a.tokens.issue(sd(deck[0]), sd("1230"), "visa").token
    old = a.store.get(first).key_id
    new = rotate_data_key(keys, KEK)  # every node's key file now names `new` active
    second = b.tokens.issue(sd(deck[1]), sd("1230"), "visa").token
    assert b.store.get(second).key_id == old  # not yet: the vault still says `old`
    assert a.vault.reencrypt(old) == 2
    third = b.tokens.issue(sd(deck[2]), sd("1230"), "visa").token
    assert {a.store.get(t).key_id for t in (first, second, third)} == {new}
    assert a.store.tokens_with_key(old) == []
    now = time.time()
    assert [b.vault.open(t, now).pan.reveal() for t in (first, second, third)] == deck


def test_a_write_sealed_under_the_previous_generation_is_refused(nodes, keys):
    a, b = nodes
    token = a.tokens.issue(sd(SCAN_PAN), sd("1230"), "visa").token
    stale = a.store.get(token)
    rotate_data_key(keys, KEK)
    a.vault.reencrypt(stale.key_id)
    with pytest.raises(StaleKeyGeneration) as refused:
        b.store.put(replace(stale, token="tok_late", fingerprint="fp-other"))
    assert refused.value.current == a.vault.active_key_id != stale.key_id


def test_the_generation_moves_only_once_running_writes_have_committed(nodes):
    """A write holds the generation lock shared until it commits (put, refresh); moving
    the generation waits for it, so no record sealed under the old key lands later."""
    a, b = nodes
    a.tokens.issue(sd(SCAN_PAN), sd("1230"), "visa")
    moved = threading.Event()
    with psycopg.connect(a.dsn) as writer, writer.transaction():
        writer.execute(
            "SELECT pg_advisory_xact_lock_shared(%s, %s)", (LOCK_NAMESPACE, KEY_GENERATION_LOCK)
        )
        mover = threading.Thread(target=lambda: (b.store.advance_key("dk-next"), moved.set()))
        mover.start()
        held_back = not moved.wait(0.5)
    mover.join(30)
    assert held_back and moved.is_set() and a.store.current_key_id() == "dk-next"


def test_two_nodes_never_reencrypt_at_once(nodes):
    a, b = nodes
    order: list[str] = []

    def other() -> None:
        with b.store.resealing():
            order.append("b entered")

    with a.store.resealing():
        waiting = threading.Thread(target=other)
        waiting.start()
        waiting.join(0.5)
        order.append("a left")
    waiting.join(30)
    assert order == ["a left", "b entered"]


def test_concurrent_reencryptions_reseal_each_record_once(nodes, keys):
    a, b = nodes
    for pan in cards(14, 30):
        a.tokens.issue(sd(pan), sd("1230"), "visa")
    old = a.vault.active_key_id
    rotate_data_key(keys, KEK)
    counts: list[int] = []
    start = threading.Barrier(2)

    def reencrypt(n: Node) -> None:
        start.wait()
        counts.append(n.vault.reencrypt(old))

    run_threads([threading.Thread(target=reencrypt, args=(n,)) for n in nodes])
    assert sorted(counts) == [0, 30] and a.store.tokens_with_key(old) == []


# --- no card data on the server -------------------------------------------------------
_SPACED = " ".join(SCAN_PAN[i : i + 4] for i in range(0, 16, 4))
#: The PAN in any form: never anywhere.
PAN_FORMS = [p.encode() for p in (SCAN_PAN, _SPACED, _SPACED.replace(" ", "-"))]
#: Short needles (CVV, expiry) also occur by chance in a fresh data directory (binary
#: pages, catalog text): tokenising must add none.  Flanked by no letter, digit, '-' or
#: '_' so hex and base64url text (fingerprints, ciphertext, tokens in the log) never
#: match by chance, while '947', "947" or cvv=947 would.
_FLANK = rb"[0-9A-Za-z_-]"
SHORT_FORMS = [
    re.compile(rb"(?<!%s)%s(?!%s)" % (_FLANK, needle.encode(), _FLANK))
    for needle in (SCAN_CVV, SCAN_EXPIRY, SCAN_EXPIRY[:2] + "/" + SCAN_EXPIRY[2:])
]


def datadir_files(datadir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(datadir)): p.read_bytes() for p in datadir.rglob("*") if p.is_file()}


def short_form_hits(files: dict[str, bytes]) -> Counter[str]:
    return Counter(
        {
            pat.pattern.decode(): sum(len(pat.findall(b)) for b in files.values())
            for pat in SHORT_FORMS
        }
    )


def test_the_scan_finds_each_form_of_the_card_data():
    planted = {"a": b"pan 4000 0566 5566 5556", "b": b"$5 = '947', exp 0839, '08/39'"}
    assert [f for f in PAN_FORMS if any(f in b for b in planted.values())] == [PAN_FORMS[1]]
    assert sorted(short_form_hits(planted).values()) == [1, 1, 1]
    assert sum(short_form_hits({"hex": b"\\x0a947f tok_947- fp-9470 1.947e3"}).values()) == 0


def checkpoint(server: PostgresServer) -> None:
    """Every page the server holds in memory written to its data files."""
    with psycopg.connect(superuser(server.dsn), autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def log_every_statement(server: PostgresServer) -> None:
    """Every statement and its parameters into server.log, and nothing with numbers of
    its own (timestamps, pids, checkpoint statistics would match the short needles by
    chance)."""
    with psycopg.connect(superuser(server.dsn), autocommit=True) as conn:
        conn.execute("ALTER SYSTEM SET log_statement = 'all'")
        conn.execute("ALTER SYSTEM SET log_line_prefix = ''")
        conn.execute("ALTER SYSTEM SET log_checkpoints = off")
        conn.execute("SELECT pg_reload_conf()")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with psycopg.connect(server.dsn) as conn:
            if conn.execute("SHOW log_statement").fetchone() == ("all",):
                return
        time.sleep(0.05)
    raise AssertionError("log_statement did not take effect")


def test_no_card_data_in_any_table_wal_segment_or_the_server_log(tmp_path):
    with running_postgres() as server:
        log_every_statement(server)
        checkpoint(server)
        before = short_form_hits(datadir_files(server.datadir))
        config = TokenizerConfig(
            vault_backend="postgresql",
            vault_dsn=server.dsn,
            keystore_path=str(tmp_path / "keys.json"),
            kek_env=None,
        )
        tk = build_tokenizer(config, KEK, clock=ManualClock())
        tokens = []
        for pan in (SCAN_PAN, SCAN_PAN, *cards(15, 5)):
            session = tk.new_session(amount_minor=1250, currency="GBP", reference="order-42")
            for ch in pan + "#" + SCAN_EXPIRY + SCAN_CVV:
                session.digit(ch)
            assert session.state == "tokenised"
            tokens.append(session.token)
        tk.close()
        checkpoint(server)
        files = datadir_files(server.datadir)
    log = files["server.log"]
    assert b"INSERT INTO vault" in log and tokens[0].encode() in log  # the log saw it all
    assert any(tokens[0].encode() in b for name, b in files.items() if name.startswith("base/"))
    assert any(tokens[0].encode() in b for name, b in files.items() if name.startswith("pg_wal/"))
    assert [(n, f) for n, b in files.items() for f in PAN_FORMS if f in b] == []
    assert short_form_hits(files) - before == Counter()


def test_the_keys_command_reencrypts_a_shared_vault_by_a_dsn_from_the_environment(
    nodes, keys, vault_dsn, tmp_path
):
    a, _ = nodes
    token = a.tokens.issue(sd(SCAN_PAN), sd("1230"), "visa").token
    old = a.store.get(token).key_id
    new = rotate_data_key(keys, KEK)
    kek_file = tmp_path / "kek"
    kek_file.write_text(kek_text(7))
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "masker.cli",
            "keys",
            "reencrypt",
            "--store",
            str(keys),
            "--from-key",
            old,
            "--kek-file",
            str(kek_file),
            "--vault-dsn-env",
            "TEST_VAULT_DSN",
        ],
        env={**os.environ, "TEST_VAULT_DSN": vault_dsn},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "re-sealed 1 vault records" in done.stdout and vault_dsn not in done.stdout
    assert a.store.get(token).key_id == new
