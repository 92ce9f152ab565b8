"""20 concurrent masked calls through the real masker, and nothing left behind.

Five pjsua2 caller processes (four calls each, the wheel's limit) key in-band
digits at once; the agent side is `masker.phones.lite` answering every agent-leg
INVITE on one PBX address and keeping what each call receives.  After the calls
end, the service must hold no more sockets than before and its memory must not
have grown by more than a bounded amount.
"""

from __future__ import annotations

import time

import pytest
import soundfile as sf

from masker.offline.receivers import spandsp_digits
from masker.phones.client import PhoneClient
from masker.phones.lite import LitePhones, Pump, close_all, received_pcm
from masker.phones.procstat import proc_rss_kib, proc_sockets
from masker.phones.service_process import ServiceProcess
from masker.phones.tones import keyed_signal

pytestmark = [pytest.mark.e2e]

KEYS = "4111111111111111#"


def run_round(callers, service, wav, seconds) -> list[tuple[PhoneClient, int, str]]:
    """One call per free slot of every caller; play the keys; hang up; final states."""
    calls = []
    for phone in callers:
        for _ in range(4):
            calls.append((phone, phone.call(f"sip:3000@{service.uri_host}")))
    for phone, c in calls:
        phone.wait_state(c, "CONFIRMED", timeout=20)
        phone.wait_media(c, timeout=10)
    for phone, c in calls:
        phone.play(c, wav)
    time.sleep(seconds + 0.5)
    for phone, c in calls:
        phone.hangup(c)
    return [(phone, c, phone.wait_state(c, "DISCONNECTED", timeout=20)["state"])
            for phone, c in calls]  # fmt: skip


def concurrent_rounds(tmp_path, n_callers: int, rounds: int):
    sig = keyed_signal(KEYS, lead_ms=200)
    wav = tmp_path / "keys.wav"
    sf.write(wav, sig.pcm, 8000, subtype="PCM_16")
    lite = LitePhones(("127.0.0.1", 0))
    lite.accept_any = True
    results = []
    try:
        with (
            ServiceProcess(pbx_port=lite.uas_port, workdir=tmp_path / "svc") as service,
            Pump(lite) as pump,
        ):
            callers = [PhoneClient(f"caller{i}") for i in range(n_callers)]
            try:
                time.sleep(0.5)
                sockets0 = proc_sockets(service.pid)
                rss0 = proc_rss_kib(service.pid)
                for _ in range(rounds):
                    with pump.lock:
                        before = set(lite.calls)
                    states = run_round(callers, service, wav, sig.duration_s)
                    time.sleep(1.0)
                    with pump.lock:
                        mine = [lite.calls[k] for k in set(lite.calls) - before]
                    results.append({
                            "states": [s for _, _, s in states],
                            "agent_calls": mine,
                            "sockets": proc_sockets(service.pid) - sockets0,
                            "rss_kib": proc_rss_kib(service.pid),
                            "rss_growth_kib": proc_rss_kib(service.pid) - rss0,
                            "active": len(service.api_get("/api/calls")["calls"]),
                        })  # fmt: skip
            finally:
                for phone in callers:
                    phone.close()
    finally:
        close_all(lite)
    return results


@pytest.fixture(scope="module")
def twenty_calls(tmp_path_factory):
    return concurrent_rounds(tmp_path_factory.mktemp("e2e-20"), n_callers=5, rounds=1)[0]


@pytest.mark.timeout(180)
def test_twenty_concurrent_calls_all_set_up_and_end(twenty_calls):
    assert twenty_calls["states"] == ["DISCONNECTED"] * 20
    assert len(twenty_calls["agent_calls"]) == 20
    assert all(c.state == "ended" for c in twenty_calls["agent_calls"])


@pytest.mark.timeout(180)
def test_twenty_concurrent_calls_are_all_masked(twenty_calls):
    for call in twenty_calls["agent_calls"]:
        pcm = received_pcm(call)
        assert len(pcm) > 8000 * 2
        assert spandsp_digits(pcm) == ""


@pytest.mark.timeout(180)
def test_twenty_concurrent_calls_leave_no_rtp_port_behind(twenty_calls):
    assert twenty_calls["sockets"] == 0


@pytest.mark.timeout(180)
def test_twenty_concurrent_calls_leave_bounded_memory_behind(twenty_calls):
    # first calls also pay for one-off allocations (masker batches, imports)
    assert twenty_calls["rss_growth_kib"] < 16 * 1024


@pytest.mark.soak
@pytest.mark.timeout(900)
def test_repeated_rounds_of_calls_leave_nothing_behind(tmp_path):
    rounds = concurrent_rounds(tmp_path, n_callers=5, rounds=8)
    assert all(r["sockets"] == 0 for r in rounds)
    # the registry keeps ended calls listed for a minute (~45 KiB each measured);
    # anything beyond 100 KiB per call after warm-up is a leak
    per_call = (rounds[-1]["rss_kib"] - rounds[1]["rss_kib"]) / (20 * (len(rounds) - 2))
    assert per_call < 100
