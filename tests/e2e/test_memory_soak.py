"""Memory soak (issue 9, goal 5): 400 concurrent calls for 10 minutes through a real
`masker serve` (masker.phones.lite: real SIP and 20 ms G.711 RTP both ways).

Memory per call (the RSS of the service and any media workers with the calls up,
after warm-up, less their idle RSS before them, over the calls) must be at most
64 KiB, and RSS must stay flat:
no more than 2 % above its post-warm-up level at the end, nor at any sample.

Marked `soak` (`make test` deselects it: `-m "not soak"`); nothing of it runs in the
normal suite.  MASKER_SOAK_CALLS / MASKER_SOAK_SECONDS shorten it for a check by hand:
    MASKER_SOAK_CALLS=50 MASKER_SOAK_SECONDS=60 .venv/bin/python -m pytest -s -m soak \\
        tests/e2e/test_memory_soak.py
"""

from __future__ import annotations

import os
import time

import pytest

from masker.phones.lite import LitePhones, close_all, drive, drive_until_up
from masker.phones.procstat import tree_rss_kib
from masker.phones.service_process import ServiceProcess

pytestmark = [pytest.mark.e2e, pytest.mark.soak]

N_CALLS = int(os.environ.get("MASKER_SOAK_CALLS", "400"))
MEASURED_S = float(os.environ.get("MASKER_SOAK_SECONDS", "600"))
SETUP_RATE = 50  # new calls per second, as `make bench-calls`
PER_CALL_KIB = 64
RSS_GROWTH = 0.02
SAMPLE_EVERY_S = 5.0


@pytest.mark.timeout(int(MEASURED_S) + 600)
def test_memory_per_call_is_bounded_and_flat_over_a_long_run(tmp_path):
    phones = LitePhones(("127.0.0.1", 0), seed=9)
    svc = ServiceProcess(
        pbx_port=phones.uas_port,
        workdir=tmp_path,
        media_ports=max(4 * N_CALLS + 64, 128),
        api=False,
    )
    phones.service = ("127.0.0.1", svc.sip_port)
    try:
        time.sleep(0.5)
        rss_idle = tree_rss_kib(svc.pid)
        calls = []
        while len(calls) < N_CALLS:  # paced, as a carrier would deliver them
            for _ in range(min(SETUP_RATE // 10, N_CALLS - len(calls))):
                calls.append(phones.start_call(len(calls)))
            drive(phones, time.monotonic() + 0.1)
        assert drive_until_up(phones, calls, 30), [c.state for c in calls if c.state != "up"]
        warm_up_s = min(60.0, max(10.0, MEASURED_S / 10))
        drive(phones, time.monotonic() + warm_up_s)  # buffers, batches, caches, allocator
        rss0 = tree_rss_kib(svc.pid)
        rx0 = sum(c.rx.packets for c in calls)
        samples = [rss0]
        end = time.monotonic() + MEASURED_S
        while time.monotonic() < end:
            drive(phones, min(end, time.monotonic() + SAMPLE_EVERY_S))
            samples.append(tree_rss_kib(svc.pid))
        rss1 = samples[-1]
        packets = sum(c.rx.packets for c in calls) - rx0
        for c in calls:
            phones.hangup(c)
        stop = time.monotonic() + 30
        while any(c.state != "ended" for c in calls) and time.monotonic() < stop:
            phones.poll_sip()
            phones.drain_media()
            phones.retransmit(time.monotonic())
            time.sleep(0.02)
        time.sleep(1.0)
        rss_after = tree_rss_kib(svc.pid)
    finally:
        svc.stop()
        close_all(phones)
    per_call = (rss0 - rss_idle) / N_CALLS
    per_call_end = (rss1 - rss_idle) / N_CALLS
    growth = (rss1 - rss0) / rss0
    peak_growth = (max(samples) - rss0) / rss0
    print(
        f"\nmemory soak {N_CALLS} calls x {MEASURED_S:.0f} s (+{warm_up_s:.0f} s warm-up):"
        f" idle {rss_idle} KiB; after warm-up {rss0} KiB ({per_call:.1f} KiB per call);"
        f" end {rss1} KiB ({per_call_end:.1f} KiB per call, {100 * growth:+.2f} %,"
        f" peak {max(samples)} KiB {100 * peak_growth:+.2f} %); after hang-up {rss_after} KiB;"
        f" {packets} packets at the agent"
    )
    assert packets >= 0.9 * N_CALLS * 50 * MEASURED_S
    assert per_call_end <= PER_CALL_KIB
    assert growth <= RSS_GROWTH
    assert peak_growth <= RSS_GROWTH
