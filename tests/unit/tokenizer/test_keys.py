import json
import os
import stat

import pytest

from tests.support.cards import kek_from_seed, kek_text
from tokenizer.keys import (
    INDEX_KEY_ID,
    Kek,
    KeyError_,
    KeyRing,
    create_store,
    list_keys,
    retire_kek,
    rewrap,
    rotate_data_key,
)


@pytest.fixture
def store(tmp_path):
    path = tmp_path / "keys.json"
    create_store(path, kek_from_seed(1))
    return path


def test_store_file_is_private(store):
    assert stat.S_IMODE(os.stat(store).st_mode) == 0o600


def test_store_file_holds_no_key_bytes(store):
    ring = KeyRing(store, kek_from_seed(1))
    text = store.read_bytes()
    for key_id in ring.key_ids():
        assert ring.data_key(key_id) not in text
        assert ring.data_key(key_id).hex().encode() not in text


def test_store_records_the_key_id_of_every_key(store):
    doc = json.loads(store.read_text())
    assert doc["active"] in doc["keys"] and INDEX_KEY_ID in doc["keys"]


def test_wrong_kek_cannot_open_the_store(store):
    with pytest.raises(KeyError_):
        KeyRing(store, kek_from_seed(2))


def test_create_refuses_to_overwrite(store):
    with pytest.raises(KeyError_):
        create_store(store, kek_from_seed(1))


def test_rotation_makes_a_new_active_key_and_keeps_the_old(store):
    ring = KeyRing(store, kek_from_seed(1))
    old = ring.active_key_id
    new = rotate_data_key(store, kek_from_seed(1))
    assert new != old and {old, new} <= set(KeyRing(store, kek_from_seed(1)).key_ids())


def test_running_key_ring_picks_up_a_rotation(store):
    ring = KeyRing(store, kek_from_seed(1))
    new = rotate_data_key(store, kek_from_seed(1))
    assert ring.active_key_id == new


def test_running_key_ring_finds_a_key_added_after_start(store):
    ring = KeyRing(store, kek_from_seed(1))
    new = rotate_data_key(store, kek_from_seed(1))
    assert len(ring.data_key(new)) == 32


def test_rewrap_lets_the_new_kek_open_every_key(store):
    old_ring = KeyRing(store, kek_from_seed(1))
    rewrap(store, kek_from_seed(1), kek_from_seed(2))
    new_ring = KeyRing(store, kek_from_seed(2))
    assert all(new_ring.data_key(k) == old_ring.data_key(k) for k in old_ring.key_ids())


def test_rewrap_keeps_the_old_kek_working_until_retired(store):
    rewrap(store, kek_from_seed(1), kek_from_seed(2))
    assert KeyRing(store, kek_from_seed(1)).active_key_id


def test_retire_kek_drops_the_old_wrapping(store):
    rewrap(store, kek_from_seed(1), kek_from_seed(2))
    retire_kek(store, kek_from_seed(2))
    with pytest.raises(KeyError_):
        KeyRing(store, kek_from_seed(1))


def test_list_keys_marks_the_active_key(store):
    active = [k.key_id for k in list_keys(store) if k.active]
    assert active == [json.loads(store.read_text())["active"]]


def test_kek_from_env_reads_base64(monkeypatch):
    monkeypatch.setenv("TEST_KEK", kek_text(3))
    assert Kek.from_env("TEST_KEK").id == kek_from_seed(3).id


def test_kek_from_file_reads_hex(tmp_path):
    (tmp_path / "kek").write_text((bytes([3]) * 32).hex() + "\n")
    assert Kek.from_file(tmp_path / "kek").id == kek_from_seed(3).id


def test_short_kek_is_refused(tmp_path):
    (tmp_path / "kek").write_text("c2hvcnQ=")
    with pytest.raises(KeyError_):
        Kek.from_file(tmp_path / "kek")


def test_missing_env_kek_is_a_clear_error():
    with pytest.raises(KeyError_, match="NOT_SET_ANYWHERE"):
        Kek.from_env("NOT_SET_ANYWHERE")


def test_kek_repr_shows_only_its_id():
    kek = kek_from_seed(4)
    assert repr(kek) == f"Kek(id={kek.id!r})"
