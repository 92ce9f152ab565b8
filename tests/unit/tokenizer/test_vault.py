from dataclasses import replace

import pytest

from tests.support.cards import VISA, kek_from_seed, make_vault, sd
from tokenizer.keys import KeyRing, rotate_data_key
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
    vault.store.put(replace(record, token="tok_b"))
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
