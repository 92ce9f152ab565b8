"""Issue 13, vault: a write never overwrites another card's record.

Before: `INSERT OR REPLACE` replaced any record holding the same token, PSP token and
authorisation included, and FPE tokens of two cards with the same BIN and last four
collide across a data-key rotation (84-89 in 3,000 + 3,000 such cards), so each
collision silently replaced another card's record.
"""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
import structlog

from tests.support.cards import VISA, kek_from_seed, make_vault, sd
from tokenizer.keys import rotate_data_key
from tokenizer.luhn import luhn_valid
from tokenizer.token_service import TokenService
from tokenizer.vault import TokenCollision, VaultError

NOW = 1_800_000_000.0
OTHER_VISA = "4000056655665556"


@pytest.fixture
def vault(tmp_path):
    v = make_vault(tmp_path, ttl_s=10**7)
    yield v
    v.store.close()


def store(vault, token, pan, fingerprint, now=NOW):
    return vault.store_card(
        token=token,
        scope="m1",
        fingerprint=fingerprint,
        pan=sd(pan),
        expiry=sd("0839"),
        brand="visa",
        now=now,
    )


def same_bin_and_last_four(rng: random.Random, n: int, seen: set[str]) -> list[str]:
    """`n` distinct Luhn-valid cards 411111 ****** 1111."""
    out = []
    while len(out) < n:
        pan = f"411111{rng.randrange(10**6):06d}1111"
        if luhn_valid(pan) and pan not in seen:
            seen.add(pan)
            out.append(pan)
    return out


def test_store_put_never_replaces_an_existing_record(vault):
    record = store(vault, "tok_a", VISA, "fp-a")
    vault.store.set_psp_result("tok_a", "psp_1", "AUTH1")
    with pytest.raises(TokenCollision):
        vault.store.put(replace(record, fingerprint="fp-b", psp_token=None))
    kept = vault.store.get("tok_a")
    assert (kept.fingerprint, kept.psp_token, kept.psp_authorisation) == ("fp-a", "psp_1", "AUTH1")


def test_a_token_held_by_another_card_is_refused_and_that_card_is_kept(vault):
    store(vault, "tok_a", VISA, "fp-a")
    with pytest.raises(TokenCollision):
        store(vault, "tok_a", OTHER_VISA, "fp-b")
    assert vault.open("tok_a", NOW).pan.reveal() == VISA


def test_an_expired_record_of_another_card_is_not_overwritten_either(vault):
    store(vault, "tok_a", VISA, "fp-a", now=NOW - 10**8)  # long expired, not yet purged
    with pytest.raises(TokenCollision):
        store(vault, "tok_a", OTHER_VISA, "fp-b")
    assert vault.store.get("tok_a").fingerprint == "fp-a"


def test_the_same_card_storing_its_token_again_keeps_its_psp_result(vault):
    store(vault, "tok_a", VISA, "fp-a")
    vault.store.set_psp_result("tok_a", "psp_1", "AUTH1")
    store(vault, "tok_a", VISA, "fp-a", now=NOW + 50)
    kept = vault.store.get("tok_a")
    assert (kept.psp_token, kept.psp_authorisation) == ("psp_1", "AUTH1")
    assert kept.expires_at == NOW + 50 + vault.ttl_s


def test_fpe_tokens_of_one_bin_and_last_four_never_overwrite_across_a_rotation(tmp_path, vault):
    rng = random.Random(13)
    seen: set[str] = set()
    first, second = same_bin_and_last_four(rng, 3000, seen), same_bin_and_last_four(rng, 3000, seen)
    service = TokenService(vault, kind="fpe", scope="m1")
    tokens = {}
    with structlog.testing.capture_logs() as logs:
        for pan in first:
            tokens[pan] = service.issue(sd(pan), sd("1230"), "visa").token
        rotate_data_key(tmp_path / "keys.json", kek_from_seed(7))
        for pan in second:
            tokens[pan] = service.issue(sd(pan), sd("1230"), "visa").token
    resolved = sum(
        e.get("collisions", 0) for e in logs if e.get("event") == "token_collision_resolved"
    )
    now = service.clock.now().timestamp()
    wrong = [pan for pan, tok in tokens.items() if vault.open(tok, now).pan.reveal() != pan]
    assert len(set(tokens.values())) == 6000 and wrong == []
    assert resolved > 0  # the collisions happened (about 90) and were resolved
    assert all(
        not luhn_valid(t) and t[:6] == "411111" and t[-4:] == "1111" for t in tokens.values()
    )


def test_the_same_card_gets_the_same_fpe_token_within_a_key_generation(vault):
    service = TokenService(vault, kind="fpe", scope="m1")
    first = service.issue(sd(VISA), sd("1230"), "visa")
    again = service.issue(sd(VISA), sd("1230"), "visa")
    assert again.token == first.token and again.reused


def test_tokens_issued_before_a_rotation_still_open_after_it(tmp_path, vault):
    service = TokenService(vault, kind="fpe", scope="m1")
    old = service.issue(sd(VISA), sd("1230"), "visa").token
    rotate_data_key(tmp_path / "keys.json", kek_from_seed(7))
    service.issue(sd(OTHER_VISA), sd("1230"), "visa")
    now = service.clock.now().timestamp()
    assert vault.open(old, now).pan.reveal() == VISA
    assert service.issue(sd(VISA), sd("1230"), "visa").token == old  # still the card's token


def test_a_true_collision_is_an_error_not_an_overwrite(vault, monkeypatch):
    service = TokenService(vault, kind="vault", scope="m1")
    held = service.issue(sd(VISA), sd("1230"), "visa").token
    monkeypatch.setattr(service, "_new_tokens", lambda pan: iter([held] * 8))
    with pytest.raises(VaultError):
        service.issue(sd(OTHER_VISA), sd("1230"), "visa")
    now = service.clock.now().timestamp()
    assert vault.open(held, now).pan.reveal() == VISA
