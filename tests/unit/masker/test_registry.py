"""The call registry: calls, policy, capture sessions, events; digits reach a session once."""

from __future__ import annotations

import threading
import time

import pytest
import structlog.testing

from masker.calls.registry import Registry
from masker.errors import CallEnded, CaptureConflict


class FakeSession:
    """Stands in for tokenizer.PaymentSession (digit/status/subscribe/cancel/close/poll)."""

    def __init__(self, **kw):
        self.kw = kw
        self.keys: list[str] = []
        self.state = "collecting"
        self.subs = []
        self.polled = 0
        self.closed = False

    def digit(self, d):
        self.keys.append(d)

    def status(self):
        return {"state": self.state, "entered": len(self.keys)}

    def subscribe(self, cb):
        self.subs.append(cb)
        return lambda: self.subs.remove(cb)

    def cancel(self):
        self.state = "cancelled"

    def close(self):
        self.closed = True
        if self.state == "collecting":
            self.state = "cancelled"

    def restart_field(self, name):
        self.restarted = name

    def poll(self):
        self.polled += 1


@pytest.fixture
def made():
    return []


@pytest.fixture
def reg(made):
    def factory(**kw):
        s = FakeSession(**kw)
        made.append(s)
        return s

    return Registry(factory)


def test_new_call_is_listed(reg):
    cid = reg.add_call("trunk-1")
    assert [c["id"] for c in reg.list_calls()] == [cid]
    assert reg.get_call(cid)["trunk_call_id"] == "trunk-1"


def test_unknown_call_is_a_lookup_error(reg):
    with pytest.raises(LookupError):
        reg.get_call("nope")


def test_first_key_press_starts_a_capture_in_always_policy(reg, made):
    cid = reg.add_call("t")
    assert reg.on_digit(cid, "4", "inband")
    assert made[0].keys == ["4"]
    assert reg.get_call(cid)["capture"]["state"] == "collecting"


def test_digits_are_dropped_without_a_capture_in_capture_policy(reg, made):
    cid = reg.add_call("t", policy="capture")
    assert not reg.on_digit(cid, "4", "inband")
    assert made == []


def test_start_capture_arms_the_masker_in_capture_policy(reg, made):
    cid = reg.add_call("t", policy="capture")
    armed = []
    reg.set_arm_hook(cid, armed.append)
    reg.start_capture(cid, "12.50", "GBP", "order-1", ["pan", "expiry"])
    assert armed == [True]
    assert made[0].kw["amount"] == "12.50"
    reg.on_digit(cid, "4", "rfc4733")
    assert made[0].keys == ["4"]


def test_double_start_is_a_conflict(reg):
    cid = reg.add_call("t")
    reg.start_capture(cid, "1.00", "GBP", "r", [])
    with pytest.raises(CaptureConflict):
        reg.start_capture(cid, "1.00", "GBP", "r", [])


def test_cancel_without_capture_is_a_conflict(reg):
    cid = reg.add_call("t")
    with pytest.raises(CaptureConflict):
        reg.cancel_capture(cid)


def capture_call(reg):
    """A `capture`-policy call whose arm hook is recorded, with a capture started."""
    cid = reg.add_call("t", policy="capture")
    armed = []
    reg.set_arm_hook(cid, armed.append)
    reg.start_capture(cid, "1.00", "GBP", "r", [])
    return cid, armed


def test_cancel_keeps_the_call_armed_in_capture_policy(reg, made):
    cid, armed = capture_call(reg)
    assert reg.cancel_capture(cid)["state"] == "cancelled"
    assert armed == [True] and reg.get_call(cid)["armed"]


@pytest.mark.parametrize("kind", ["failed", "timed_out", "expired", "cancelled"])
def test_a_capture_that_ends_badly_leaves_the_call_armed(reg, made, kind):
    cid, armed = capture_call(reg)
    made[0].state = kind
    made[0].subs[0]({"event": kind})
    assert armed == [True] and reg.get_call(cid)["armed"]


def test_ending_the_payment_phase_disarms(reg, made):
    cid, armed = capture_call(reg)
    made[0].state = "handed_off"
    reg.end_payment_phase(cid, by="agent-1")
    assert armed == [True, False] and not reg.get_call(cid)["armed"]


def test_ending_the_payment_phase_while_digits_are_collected_is_a_conflict(reg, made):
    cid, armed = capture_call(reg)
    with pytest.raises(CaptureConflict):
        reg.end_payment_phase(cid, by="agent-1")
    assert armed == [True]


def test_ending_the_payment_phase_under_always_policy_is_a_conflict(reg):
    cid = reg.add_call("t")
    with pytest.raises(CaptureConflict):
        reg.end_payment_phase(cid, by="agent-1")
    assert reg.get_call(cid)["armed"]


def test_ending_the_payment_phase_of_an_ended_call_is_refused(reg):
    cid = reg.add_call("t", policy="capture")
    reg.end_call(cid)
    with pytest.raises(CallEnded):
        reg.end_payment_phase(cid, by="agent-1")


def test_a_new_capture_after_the_payment_phase_arms_again(reg, made):
    cid, armed = capture_call(reg)
    made[0].state = "cancelled"
    reg.end_payment_phase(cid, by="agent-1")
    reg.start_capture(cid, "1.00", "GBP", "r2", [])
    assert armed == [True, False, True]


def test_ending_the_payment_phase_is_audited_without_card_data(reg, made):
    cid, _ = capture_call(reg)
    for d in "4111111111111111":
        reg.on_digit(cid, d, "inband")
    made[0].state = "handed_off"
    with structlog.testing.capture_logs() as logs:
        reg.end_payment_phase(cid, by="agent-7")
    entry = next(e for e in logs if e["event"] == "payment phase ended")
    assert (entry["call"], entry["agent"], entry["was_armed"]) == (cid, "agent-7", True)
    assert "41111111" not in repr(logs)  # eight digits: a hex call id holds four by chance


def test_subscribers_are_told_when_masking_is_armed_and_disarmed(reg, made):
    cid = reg.add_call("t", policy="capture")
    events = []
    reg.subscribe(cid, events.append)
    reg.start_capture(cid, "1.00", "GBP", "r", [])
    made[0].state = "cancelled"
    reg.end_payment_phase(cid, by="agent-1")
    assert [e["armed"] for e in events if e["type"] == "masking"] == [True, False]


def test_a_capture_policy_call_starts_disarmed_and_always_policy_armed(reg):
    assert not reg.get_call(reg.add_call("t", policy="capture"))["armed"]
    assert reg.get_call(reg.add_call("t"))["armed"]


def test_starting_a_capture_closes_the_session_it_replaces(reg, made):
    cid = reg.add_call("t")
    reg.on_digit(cid, "4", "inband")
    made[0].state = "tokenised"
    reg.start_capture(cid, "1.00", "GBP", "r", [])
    assert made[0].closed and reg._calls[cid].session is made[1]


def test_capture_on_ended_call_is_refused(reg):
    cid = reg.add_call("t")
    reg.end_call(cid)
    with pytest.raises(CallEnded):
        reg.start_capture(cid, "1.00", "GBP", "r", [])


def test_ending_a_call_closes_its_session(reg, made):
    cid = reg.add_call("t")
    reg.on_digit(cid, "4", "inband")
    reg.end_call(cid, "caller")
    assert made[0].state == "cancelled"
    assert reg.get_call(cid)["state"] == "ended"


def test_subscribers_get_state_changes_and_capture_events(reg, made):
    cid = reg.add_call("t")
    events = []
    unsubscribe = reg.subscribe(cid, events.append)
    reg.update_call(cid, state="connected")
    reg.on_digit(cid, "4", "inband")
    made[0].subs[0]({"event": "progress", "entered": 1})
    unsubscribe()
    reg.update_call(cid, state="held")
    kinds = [(e["type"], e.get("state") or e.get("event", {}).get("event")) for e in events]
    assert ("call", "connected") in kinds and ("capture", "progress") in kinds
    assert ("call", "held") not in kinds


def test_events_never_carry_digits(reg, made):
    cid = reg.add_call("t")
    events = []
    reg.subscribe(cid, events.append)
    for d in "4111111111111111":
        reg.on_digit(cid, d, "inband")
    assert "41111111" not in repr(events) and "1111111" not in repr(reg.list_calls())


def test_poll_drives_session_timeouts(reg, made):
    cid = reg.add_call("t")
    reg.on_digit(cid, "4", "inband")
    reg.poll()
    assert made[0].polled == 1


def test_ended_calls_are_forgotten_after_retention():
    now = [1000.0]
    reg = Registry(None, clock=lambda: now[0])
    cid = reg.add_call("t")
    reg.end_call(cid)
    now[0] += 61
    assert reg.list_calls() == []


def test_keys_after_a_finished_capture_do_not_start_another(reg, made):
    cid = reg.add_call("t")
    reg.on_digit(cid, "4", "inband")
    made[0].state = "tokenised"
    assert not reg.on_digit(cid, "#", "inband")
    assert len(made) == 1
    assert reg.get_call(cid)["capture"]["state"] == "tokenised"


class PublishingSession(FakeSession):
    """Locks like tokenizer.PaymentSession: a digit is handled, and its event published,
    while the session holds its own lock; status() takes that lock too."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.lock = threading.RLock()
        self.publishing = threading.Event()

    def digit(self, d):
        with self.lock:
            self.keys.append(d)
            self.publishing.set()
            time.sleep(0.2)  # e.g. a vault write while the token is issued
            for cb in list(self.subs):
                cb({"event": "progress", "entered": len(self.keys)})

    def status(self):
        with self.lock:
            return super().status()


def test_reading_calls_while_a_session_publishes_does_not_deadlock():
    sessions = []

    def factory(**kw):
        sessions.append(PublishingSession(**kw))
        return sessions[-1]

    reg = Registry(factory)
    cid = reg.add_call("t")
    reg.start_capture(cid, "", "GBP", "ref", ())
    stop = threading.Event()

    def reader():  # the agent desktop polling the call list
        while not stop.is_set():
            reg.list_calls()
            reg.get_call(cid)

    keyer = threading.Thread(target=reg.on_digit, args=(cid, "4", "inband"), daemon=True)
    keyer.start()
    assert sessions[0].publishing.wait(2)
    poll = threading.Thread(target=reader, daemon=True)
    poll.start()
    keyer.join(5)
    stop.set()
    poll.join(5)
    assert not keyer.is_alive() and not poll.is_alive()
    assert reg.get_call(cid)["capture"]["entered"] == 1
