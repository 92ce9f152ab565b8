import sqlite3
import threading
from dataclasses import replace

import pytest

from tests.support.cards import VISA, kek_from_seed, make_vault, sd
from tokenizer.keys import KeyRing, rotate_data_key
from tokenizer.migrations import migrations
from tokenizer.token_service import TokenService
from tokenizer.vault import CardVault, SqliteVaultStore, VaultError

NOW = 1_800_000_000.0


@pytest.fixture
def vault(tmp_path):
    v = make_vault(tmp_path, ttl_s=100.0)
    yield v
    v.store.close()


def store(vault, token="tok_a", pan=VISA, expiry="0839", now=NOW):
    return vault.store_card(
        token=token,
        scope="m1",
        fingerprint="fp-" + token,
        pan=sd(pan),
        expiry=sd(expiry),
        brand="visa",
        now=now,
    )


def test_stored_card_opens_to_the_same_digits(vault):
    store(vault)
    card = vault.open("tok_a", NOW)
    assert (card.pan.reveal(), card.expiry.reveal()) == (VISA, "0839")


def test_record_carries_its_key_id(vault):
    assert store(vault).key_id == vault.keyring.active_key_id


def test_record_keeps_last_four_and_brand_only(vault):
    record = store(vault)
    assert (record.last4, record.brand, record.pan_length) == ("4242", "visa", 16)


def test_record_repr_hides_the_ciphertext(vault):
    assert "ciphertext" not in repr(store(vault))


def test_ciphertext_moved_to_another_token_does_not_open(vault):
    record = store(vault)
    assert vault.store.put(replace(record, token="tok_b", fingerprint="fp-copy")) is None
    with pytest.raises(VaultError):
        vault.open("tok_b", NOW)


def test_tampered_ciphertext_does_not_open(vault):
    record = store(vault)
    flipped = bytes([record.ciphertext[0] ^ 1]) + record.ciphertext[1:]
    # tampered in the file (the store itself never overwrites a record)
    vault.store._db.execute(
        "UPDATE vault SET ciphertext = ? WHERE token = ?", (flipped, record.token)
    )
    with pytest.raises(VaultError):
        vault.open("tok_a", NOW)


def test_expired_record_does_not_open(vault):
    store(vault)
    with pytest.raises(VaultError):
        vault.open("tok_a", NOW + 100.0)


def test_purge_removes_records_past_their_ttl(vault):
    store(vault, "tok_old", now=NOW - 200.0)
    store(vault, "tok_new")
    assert vault.purge_expired(NOW) == 1 and vault.store.get("tok_old") is None


def test_purge_keeps_live_records(vault):
    store(vault)
    vault.purge_expired(NOW)
    assert vault.store.get("tok_a") is not None


def test_find_by_fingerprint_returns_the_live_record(vault):
    store(vault)
    assert vault.store.find("m1", "fp-tok_a", NOW).token == "tok_a"


def test_psp_result_is_stored_against_the_token(vault):
    store(vault)
    vault.store.set_psp_result("tok_a", "psp_1", "AUTH1")
    record = vault.store.get("tok_a")
    assert (record.psp_token, record.psp_authorisation) == ("psp_1", "AUTH1")


def test_records_sealed_before_a_rotation_stay_readable(tmp_path, vault):
    store(vault, "tok_old")
    rotate_data_key(tmp_path / "keys.json", kek_from_seed(7))
    store(vault, "tok_new")
    old, new = vault.store.get("tok_old"), vault.store.get("tok_new")
    assert old.key_id != new.key_id
    assert vault.open("tok_old", NOW).pan.reveal() == VISA


def test_reencrypt_moves_old_records_to_the_active_key(tmp_path, vault):
    old_key = store(vault, "tok_old").key_id
    rotate_data_key(tmp_path / "keys.json", kek_from_seed(7))
    assert vault.reencrypt(old_key) == 1
    assert vault.store.get("tok_old").key_id == vault.keyring.active_key_id
    assert vault.open("tok_old", NOW).pan.reveal() == VISA


def test_a_second_node_reads_records_of_the_first(tmp_path, vault):
    store(vault)
    other = CardVault(
        SqliteVaultStore(tmp_path / "vault.sqlite3"),
        KeyRing(tmp_path / "keys.json", kek_from_seed(7)),
    )
    assert other.open("tok_a", NOW).expiry.reveal() == "0839"


def test_vault_file_has_secure_delete_on(vault):
    assert vault.store._db.execute("PRAGMA secure_delete").fetchone()[0] == 1


def test_a_vault_record_repr_shows_neither_ciphertext_nor_fingerprint():
    from tokenizer.vault import VaultRecord

    record = VaultRecord(
        token="tok_x", key_id="dk-1", scope="s", fingerprint="f" * 64, ciphertext=b"\x01" * 32,
        brand="VISA", last4="1111", pan_length=16, created_at=0.0, expires_at=1.0,
    )  # fmt: skip
    assert "f" * 64 not in repr(record) and "\\x01" not in repr(record)


def test_storing_a_card_again_under_another_token_gives_back_its_record(vault):
    first = store(vault, "tok_a")
    again = vault.store_card(
        token="tok_late", scope="m1", fingerprint=first.fingerprint, pan=sd(VISA),
        expiry=sd("0839"), brand="visa", now=NOW + 1,
    )  # fmt: skip
    assert again.token == "tok_a" and vault.store.get("tok_late") is None


def test_an_expired_record_of_the_card_makes_way_for_its_new_one(vault):
    store(vault, "tok_old", now=NOW - 200.0)
    new = vault.store_card(
        token="tok_new", scope="m1", fingerprint="fp-tok_old", pan=sd(VISA),
        expiry=sd("0839"), brand="visa", now=NOW,
    )  # fmt: skip
    assert new.token == "tok_new" and vault.store.get("tok_old") is None


def test_two_connections_racing_one_card_issue_one_token(tmp_path, vault):
    """The find-then-put race: threads on two connections to one vault file (two
    `SqliteVaultStore`s, as two processes would have), all issuing one card at once."""
    other = CardVault(SqliteVaultStore(tmp_path / "vault.sqlite3"), vault.keyring)
    services = [TokenService(v, kind="vault", scope="m1") for v in (vault, other)]
    start = threading.Barrier(8)
    tokens: list[str] = []

    def issue(service: TokenService) -> None:
        start.wait()
        for _ in range(20):
            tokens.append(service.issue(sd(VISA), sd("1230"), "visa").token)

    threads = [threading.Thread(target=issue, args=(services[i % 2],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    other.store.close()
    rows = vault.store._db.execute("SELECT count(*) FROM vault").fetchone()[0]
    assert len(tokens) == 160 and len(set(tokens)) == 1 and rows == 1


def test_the_vault_file_records_its_schema_version(vault):
    version = vault.store._db.execute("PRAGMA user_version").fetchone()[0]
    assert version == len(migrations("sqlite"))


def test_one_record_per_card_is_a_constraint_of_the_file(vault):
    record = store(vault)
    with pytest.raises(sqlite3.IntegrityError):
        vault.store._db.execute(
            "INSERT INTO vault SELECT 'tok_dup', key_id, scope, fingerprint, ciphertext, brand,"
            " last4, pan_length, created_at, expires_at, NULL, NULL FROM vault WHERE token = ?",
            (record.token,),
        )


LEGACY_SCHEMA = migrations("sqlite")[0].sql  # what every vault file held before versions


def test_a_legacy_vault_with_a_card_stored_twice_keeps_both_tokens(tmp_path):
    """A file from before the unique constraint, where the race stored one card twice:
    both tokens still open, the newer record is the card's from now on."""
    keyring_vault = make_vault(tmp_path / "keys")
    keyring_vault.store.close()
    legacy = tmp_path / "legacy.sqlite3"
    db = sqlite3.connect(legacy)
    db.executescript(LEGACY_SCHEMA)
    db.commit()
    db.close()
    old_style = CardVault(SqliteVaultStore(tmp_path / "scratch.sqlite3"), keyring_vault.keyring)
    rows = [
        store(old_style, token, now=now)
        for token, now in (("tok_first", NOW), ("tok_second", NOW + 5))
    ]
    db = sqlite3.connect(legacy)
    for r in rows:
        db.execute(
            "INSERT INTO vault VALUES (?,?,?,?,?,?,?,?,?,?,NULL,NULL)",
            (r.token, r.key_id, r.scope, "fp-same", r.ciphertext, r.brand, r.last4,
             r.pan_length, r.created_at, r.expires_at),
        )  # fmt: skip
    db.commit()
    db.close()
    migrated = CardVault(SqliteVaultStore(legacy), keyring_vault.keyring)
    assert [migrated.open(t, NOW).pan.reveal() for t in ("tok_first", "tok_second")] == [VISA] * 2
    assert migrated.store.find("m1", "fp-same", NOW).token == "tok_second"
    migrated.store.close()
    old_style.store.close()
