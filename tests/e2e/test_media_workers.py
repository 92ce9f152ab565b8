"""Media in worker processes (issue 9, `[media] workers = 2`): real `masker serve`
processes and real phones over loopback.  Calls are masked and tokenised whichever
worker carries them, they are spread over both, a worker that is killed ends exactly
its own calls (BYE on both legs, capture closed) and is replaced while the other's
calls keep their media, and the workers stop with the service."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from masker.offline.receivers import multimon_digits, spandsp_digits
from masker.phones.lite import LiteCall, close_all, drive, drive_until_up
from masker.phones.service_process import ServiceProcess
from tests.e2e.test_media_serve import _registry_id, send_keyed, speech_like
from tests.security.test_soak import _with_keys
from tests.support.media import Collector, audio_packets, decode_stream, keyed_packets, send_paced
from tests.support.serve import MediaCall
from tests.support.sip_client import HOST
from tests.support.workers import WORKERS_ENV, LegPhones, stats, worker_pids
from tokenizer.keys import new_kek_text

SERVED_ENV = WORKERS_ENV
CARD = "4111111111111111#1230#123#"
N_CALLS = 6


@pytest.fixture
def lite(tmp_path: Path) -> Iterator[tuple[LegPhones, ServiceProcess]]:
    """Load phones (a key '5' every second on every call) and a two-worker service."""
    phones = LegPhones(("127.0.0.1", 0), seed=9)
    _with_keys(phones)
    env = {**WORKERS_ENV, "MASKER_KEK": new_kek_text()}  # read, then gone before workers start
    service = ServiceProcess(
        pbx_port=phones.uas_port, workdir=tmp_path, api=False, env=env, media_ports=128
    )
    phones.service = ("127.0.0.1", service.sip_port)
    try:
        yield phones, service
    finally:
        service.stop()
        close_all(phones)


def _up(phones: LegPhones, n: int, first: int = 0) -> list[LiteCall]:
    calls = [phones.start_call(first + i) for i in range(n)]
    assert drive_until_up(phones, calls, timeout=20)
    return calls


def _received(calls: list[LiteCall]) -> list[int]:
    return [c.rx.packets for c in calls]


def test_keyed_cards_on_both_workers_are_masked_tokenised_and_the_agent_is_heard(served):
    calls = [MediaCall(served), MediaCall(served)]
    assert {stats(served).get(f"calls_worker_{i}") for i in (0, 1)} == {1}
    collectors = [Collector(c.agent_rtp, (HOST, c.masker_agent_port)) for c in calls]
    keyed = keyed_packets(CARD, inband=True, rfc4733=True)
    senders = [threading.Thread(target=send_keyed, args=(c, keyed)) for c in calls]
    for t in senders:
        t.start()
    for t in senders:
        t.join()
    heard = []
    for call in calls:
        sent = audio_packets(speech_like(800, 5), ssrc=0x5EED)
        back = Collector(call.caller_rtp, (HOST, call.masker_caller_port))
        send_paced(call.agent_rtp, (HOST, call.masker_agent_port), sent, interval=0.005)
        time.sleep(0.2)
        heard.append([d for _, d, _ in back.stop()] == sent)
    for call in calls:
        served.wait_log("capture.event", call=_registry_id(served, call), kind="token", timeout=10)
    for call, coll in zip(calls, collectors, strict=True):
        pkts = coll.stop() and coll.rtp()
        call.hangup()
        out = decode_stream(pkts)
        assert {p.payload_type for p in pkts} == {0}
        assert spandsp_digits(out) == "" and multimon_digits(out) == ""
    assert heard == [True, True]
    assert "4111111111111111" not in "".join(served.raw)


def test_calls_are_spread_over_both_workers_and_carry_media_both_ways(lite):
    phones, service = lite
    phones.time_back = True
    calls = _up(phones, N_CALLS)
    drive(phones, time.monotonic() + 2)
    counts = stats(service)
    assert counts["calls_worker_0"] == counts["calls_worker_1"] == N_CALLS // 2
    assert counts["media_workers"] == 2 and counts["calls"] == N_CALLS
    assert min(_received(calls)) > 50  # 2 s of 20 ms packets, masked, at every agent
    assert phones.caller_rx_packets > 0  # and the agents' audio back at the callers
    assert counts.get("digits_inband", 0) >= N_CALLS  # the '5' keyed every second


def test_a_killed_worker_ends_exactly_its_calls_and_the_other_calls_keep_their_media(lite):
    phones, service = lite
    calls = _up(phones, N_CALLS)
    deadline = time.monotonic() + 20
    while stats(service).get("digits_inband", 0) < N_CALLS and time.monotonic() < deadline:
        drive(phones, time.monotonic() + 0.5)  # until every call has keyed: a capture runs
    keyed = stats(service)["digits_inband"]
    since = len(service.log_lines)
    victim = worker_pids(service)[0]
    os.kill(victim, signal.SIGKILL)
    lost = service.wait_log("media worker lost", since=since, worker=0)
    drive(phones, time.monotonic() + 3)  # the BYEs go out
    ended = {
        line["trunk_call_id"]: line["call"]
        for line in service.log_lines[since:]
        if line.get("event") == "call.ended" and line.get("reason") == "media_worker_lost"
    }
    byed = {c.call_id for c in calls if phones.byes.get(c.call_id) == {"caller", "agent"}}
    assert lost["calls"] == N_CALLS // 2 == len(ended)
    assert set(ended) == byed
    for registry_id in ended.values():  # the capture went with the call
        service.wait_log("capture.event", call=registry_id, kind="cancelled", since=since)
    survivors = [c for c in calls if c.call_id not in byed]
    assert all(c.state == "up" and c.call_id not in phones.byes for c in survivors)
    before = _received(survivors)
    drive(phones, time.monotonic() + 1.5)
    assert all(b - a > 40 for a, b in zip(before, _received(survivors), strict=True))
    # a replacement worker takes the next call
    service.wait_log("media worker ready", since=since, worker=0, timeout=30)
    assert worker_pids(service)[0] != victim
    new = _up(phones, 1, first=N_CALLS)
    drive(phones, time.monotonic() + 1.5)
    assert new[0].rx.packets > 40
    assert stats(service)["calls_worker_0"] == 1
    assert stats(service)["digits_inband"] >= keyed  # the dead worker's counts stay


def test_workers_leave_the_parents_signals_alone_and_stop_with_the_service(lite):
    phones, service = lite
    calls = _up(phones, 2)
    pids = list(worker_pids(service).values())
    assert len(pids) == 2
    for pid in pids:
        os.kill(pid, signal.SIGTERM)  # a service manager signalling the whole group
        os.kill(pid, signal.SIGINT)
    drive(phones, time.monotonic() + 1)
    assert min(_received(calls)) > 20
    for pid in pids:  # no core dumps, and the KEK is not in their environment
        assert re.search(r"Max core file size +0 +0", Path(f"/proc/{pid}/limits").read_text())
        assert b"MASKER_KEK=" not in Path(f"/proc/{pid}/environ").read_bytes()
    for call in calls:
        phones.hangup(call)
    drive(phones, time.monotonic() + 1)
    assert service.stop() == 0
    deadline = time.monotonic() + 10
    while any(_exists(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(_exists(pid) for pid in pids)


def _exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
