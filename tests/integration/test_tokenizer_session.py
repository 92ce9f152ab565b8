"""PaymentSession: capture -> token -> PSP hand-off, with fake-free parts (real vault, real TLS)."""

import asyncio
import json

import pytest

from tests.support.cards import AMEX, SCAN_CVV, SCAN_EXPIRY, SCAN_PAN, VISA
from tests.support.psp_server import make_tls_material, running_psp
from tokenizer import HandOffNotReady, HttpsJsonGateway, TokenizerConfig, build_tokenizer
from tokenizer.clock import ManualClock
from tokenizer.luhn import luhn_valid


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_tls_material(tmp_path_factory.mktemp("psp-tls"))


@pytest.fixture
def clock():
    return ManualClock()


def make_tokenizer(tmp_path, clock, **config):
    cfg = TokenizerConfig(
        vault_path=str(tmp_path / "vault.sqlite3"),
        keystore_path=str(tmp_path / "keys.json"),
        kek_env=None,
        **config,
    )
    return build_tokenizer(cfg, dev_dir=tmp_path / "dev", clock=clock)


@pytest.fixture
def tk(tmp_path, clock):
    t = make_tokenizer(tmp_path, clock)
    yield t
    t.close()


def new_session(tk, events=None):
    s = tk.new_session(amount_minor=1250, currency="GBP", reference="order-42")
    if events is not None:
        s.subscribe(events.append)
    return s


def key_card(session, pan=SCAN_PAN, expiry=SCAN_EXPIRY, cvv=SCAN_CVV):
    for ch in pan + "#" + expiry + cvv:
        session.digit(ch)


def hand_off(tls, session, behaviour="approve"):
    async def go():
        async with running_psp(tls, behaviour) as psp:
            return await session.hand_off(HttpsJsonGateway(psp.url, ca_file=tls.ca_file)), psp

    return asyncio.run(go())


def test_complete_card_gets_a_vault_token(tk):
    events = []
    key_card(new_session(tk, events))
    token = [e for e in events if e["event"] == "token"][0]
    assert token["token"].startswith("tok_") and token["brand"] == "visa"
    assert token["display"] == "•••• •••• •••• 5556"


def test_same_card_in_same_scope_gets_the_same_token(tk):
    a, b = new_session(tk), new_session(tk)
    key_card(a)
    key_card(b)
    assert a.token == b.token


def test_same_card_in_another_scope_gets_another_token(tmp_path, clock, tk):
    other = make_tokenizer(tmp_path, clock, scope="merchant-2")
    a, b = new_session(tk), new_session(other)
    key_card(a)
    key_card(b)
    assert a.token != b.token


def test_fpe_token_kind_issues_a_luhn_failing_token(tmp_path, clock):
    t = make_tokenizer(tmp_path, clock, token_kind="fpe")
    s = new_session(t)
    key_card(s)
    assert len(s.token) == 16 and s.token[-4:] == SCAN_PAN[-4:] and not luhn_valid(s.token)


def test_status_is_public_and_masked(tk):
    s = new_session(tk)
    key_card(s)
    status = s.status()
    assert status["state"] == "tokenised" and SCAN_PAN not in json.dumps(status)


def test_events_carry_the_session_id(tk):
    events = []
    s = new_session(tk, events)
    s.digit("4")
    assert events and all(e["session"] == s.id for e in events)


def test_unsubscribe_stops_events(tk):
    events = []
    s = new_session(tk)
    unsubscribe = s.subscribe(events.append)
    unsubscribe()
    s.digit("4")
    assert events == []


def test_failing_subscriber_does_not_break_the_capture(tk):
    s = new_session(tk)
    s.subscribe(lambda e: 1 / 0)
    key_card(s)
    assert s.state == "tokenised"


def test_approved_handoff_stores_the_psp_token_against_ours(tls, tk):
    s = new_session(tk)
    key_card(s)
    result, _ = hand_off(tls, s)
    record = tk.store.get(s.token)
    assert result["ok"]
    assert (record.psp_token, record.psp_authorisation) == ("psp_tok_1", "AUTH0001")


def test_approved_handoff_wipes_the_card_from_memory(tls, tk):
    s = new_session(tk)
    key_card(s)
    cvv = s.capture.value("cvv")
    hand_off(tls, s)
    assert s.state == "handed_off" and len(cvv) == 0 and len(s.capture.value("pan")) == 0


@pytest.mark.parametrize("behaviour", ["status:500", "status:400", "bad_json"])
def test_failed_handoff_is_retryable_and_keeps_the_card(tls, tk, behaviour):
    s = new_session(tk)
    key_card(s)
    result, _ = hand_off(tls, s, behaviour)
    assert result["retryable"] and s.state == "handoff_failed"
    assert s.capture.value("cvv").reveal() == SCAN_CVV


def test_retry_after_a_failure_succeeds(tls, tk):
    s = new_session(tk)
    key_card(s)
    hand_off(tls, s, "status:503")
    result, psp = hand_off(tls, s)
    assert result["ok"] and psp.requests[0]["pan"] == SCAN_PAN


def test_declined_handoff_ends_the_session_and_wipes(tls, tk):
    s = new_session(tk)
    key_card(s)
    result, _ = hand_off(tls, s, "decline")
    assert not result["retryable"] and s.state == "declined" and len(s.capture.value("cvv")) == 0


def test_handoff_before_the_token_is_refused(tk):
    s = new_session(tk)
    with pytest.raises(HandOffNotReady):
        asyncio.run(s.hand_off(HttpsJsonGateway("https://127.0.0.1:9/")))


def test_cvv_never_reaches_the_vault(tk):
    s = new_session(tk)
    key_card(s)
    card = tk.vault.open(s.token, tk.clock.now().timestamp())
    assert card.pan.reveal() == SCAN_PAN and card.expiry.reveal() == SCAN_EXPIRY


def test_unhanded_token_expires_and_wipes(tk, clock):
    s = new_session(tk)
    key_card(s)
    clock.advance(tk.config.hold_timeout_s)
    s.poll()
    assert s.state == "expired" and len(s.capture.value("cvv")) == 0


def test_cancel_after_token_wipes(tk):
    s = new_session(tk)
    key_card(s)
    s.cancel()
    assert s.state == "cancelled" and len(s.capture.value("pan")) == 0


def test_close_wipes_everything(tk):
    s = new_session(tk)
    key_card(s, cvv="")
    s.close()
    assert len(s.capture.value("pan")) == 0 and len(s.capture.value("expiry")) == 0


def test_restart_after_token_recaptures(tk):
    s = new_session(tk)
    key_card(s)
    s.restart_field("pan")
    for ch in AMEX:
        s.digit(ch)
    for ch in "1234":
        s.digit(ch)
    assert s.state == "tokenised" and s.status()["token"]["brand"] == "amex"


def test_session_needs_pan_and_expiry(tk):
    with pytest.raises(ValueError):
        tk.new_session(amount_minor=1, currency="GBP", reference="r", fields=("pan",))


def test_purge_drops_records_after_the_ttl(tmp_path, clock):
    t = make_tokenizer(tmp_path, clock, ttl_s=60.0)
    s = new_session(t)
    key_card(s)
    clock.advance(61.0)
    assert t.purge_expired() == 1 and t.store.get(s.token) is None


def test_visa_card_in_bin_display_mode(tmp_path, clock):
    t = make_tokenizer(tmp_path, clock, display_mode="bin_last4")
    events = []
    s = new_session(t, events)
    for ch in VISA + "#":
        s.digit(ch)
    pan_events = [e for e in events if e["event"] == "progress" and e["field"] == "pan"]
    assert pan_events[-1]["display"] == "4242 42•• •••• 4242"


def test_agent_can_restart_after_the_capture_failed(tmp_path, clock):
    t = make_tokenizer(tmp_path, clock, max_attempts=1)
    s = new_session(t)
    for ch in "4242424242424241#":
        s.digit(ch)
    assert s.state == "failed"
    s.restart_field("pan")
    key_card(s)
    assert s.state == "tokenised"


def test_close_during_handoff_wipes_once_the_psp_answers(tls, tk):
    s = new_session(tk)
    key_card(s)

    async def go():
        async with running_psp(tls, "status:500") as psp:
            task = asyncio.create_task(s.hand_off(HttpsJsonGateway(psp.url, ca_file=tls.ca_file)))
            await asyncio.sleep(0)
            s.close()
            still_held = len(s.capture.value("pan"))
            await task
            return still_held, psp

    still_held, psp = asyncio.run(go())
    assert still_held == 16 and psp.requests[0]["pan"] == SCAN_PAN
    assert s.state == "cancelled" and len(s.capture.value("pan")) == 0


def key_of(psp, n=-1):
    return psp.headers[n]["Idempotency-Key"]


def test_two_payments_on_one_card_and_reference_have_different_idempotency_keys(tls, tk):
    a, b = new_session(tk), new_session(tk)
    key_card(a)
    key_card(b)
    _, first = hand_off(tls, a)
    _, second = hand_off(tls, b)
    assert a.token == b.token and key_of(first) != key_of(second)


def test_retry_of_a_failed_handoff_reuses_its_idempotency_key(tls, tk):
    s = new_session(tk)
    key_card(s)
    _, failed = hand_off(tls, s, "status:503")
    _, retried = hand_off(tls, s)
    assert key_of(failed) == key_of(retried)


def test_re_keyed_card_starts_a_new_payment_attempt(tls, tk):
    s = new_session(tk)
    key_card(s)
    _, failed = hand_off(tls, s, "status:400")
    s.restart_field("cvv")
    for ch in "123":
        s.digit(ch)
    _, retried = hand_off(tls, s)
    assert key_of(failed) != key_of(retried)


def test_session_without_an_amount_wipes_the_card_at_its_token(tk):
    s = tk.new_session(amount_minor=0, currency="GBP", reference="auto")
    key_card(s)
    assert s.state == "tokenised" and s.token and s.capture.held_digits() == 0


def test_released_card_keeps_its_masked_status(tk):
    s = tk.new_session(amount_minor=0, currency="GBP", reference="auto")
    key_card(s)
    pan = next(f for f in s.status()["fields"] if f["field"] == "pan")
    assert (pan["entered"], pan["brand"], pan["display"]) == (16, "visa", "•••• •••• •••• 5556")


def test_released_card_cannot_be_handed_off(tk):
    s = tk.new_session(amount_minor=0, currency="GBP", reference="auto")
    key_card(s)
    with pytest.raises(HandOffNotReady):
        asyncio.run(s.hand_off(HttpsJsonGateway("https://127.0.0.1:9/")))


def test_released_card_does_not_expire_later(tk, clock):
    s = new_session(tk)
    key_card(s)
    s.release_card()
    clock.advance(tk.config.hold_timeout_s)
    s.poll()
    assert s.state == "tokenised" and s.capture.held_digits() == 0


def test_released_session_ignores_a_field_restart(tk):
    s = new_session(tk)
    key_card(s)
    s.release_card()
    s.restart_field("cvv")
    assert s.state == "tokenised" and s.status()["token"] is not None
