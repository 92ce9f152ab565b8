"""Soak (issue 13): calls with speech-like noise and keypad tones through a real
`masker serve` (masker.phones.lite: real SIP and 20 ms G.711 RTP both ways), long
enough for leaks to show.  After warm-up the service's RSS (with its media worker's)
may grow by 2 % at most, no packet reaches the agent more than 40 ms behind its call's
fastest one (unless the load generator, on the same two cores, itself sent it late:
the run reports those stalls and their late packets apart; the short run in CI also
sets apart the seconds in which the service's threads waited for a CPU the other test
workers held, read from /proc schedstat), and once the calls are
hung up the file descriptors and UDP sockets of the service and its worker are back
to idle.  The report names, beside each late second, the worker's ticks 20 ms or more
behind and where their time went (`[media] stall_log_ms`), the seconds in which the
hypervisor kept a virtual CPU from running for 20 ms or more (steal), and any step of
the wall clock the packets' kernel stamps are read on (those packets are counted, not
timed).

The media runs in one worker process (`[media] workers = 1`): its own interpreter, so
the SIP side and the digit path do not hold up the media, and on the test's two cores
the second one is left to the load generator.  (With the media thread inside the
service, keys on all calls at once held each tick off the interpreter lock for up to
150 ms while it used 10 ms of CPU.  With two workers, the default on two cores, they
and the generator contend for both cores: 150 calls for 120 s had 9,324 and 59,441
late packets, and the short run failed its bound in CI.)

The short run (20 calls x 12 s measured) runs in CI; the long one (150 calls x 1 h) is
marked `soak` (`make test` deselects it: `-m "not soak"`)."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

import pytest

from dsp import g711
from dsp.keypad import to_int16
from dsp.testsignals import dtmf
from masker.phones.lite import BURST_EVERY, FRAME, LitePhones, close_all, drive, drive_until_up
from masker.phones.procstat import (
    cpu_steal_ms,
    proc_tree,
    tree_rss_kib,
    tree_run_delays_ns,
    tree_sockets,
)
from masker.phones.service_process import ServiceProcess

pytestmark = pytest.mark.e2e

LATE_MS = 40.0
RSS_GROWTH = 0.02
#: a key (80 ms of tone) every BURST_EVERY packets (1 s) on every call
KEY_AT = range(20, 24)
#: how often the service's threads' waits for a CPU are read, and the wait within
#: one such window that marks the machine as contended then
RUN_DELAY_EVERY_S = 0.2
CONTENDED_MS = LATE_MS
#: a virtual CPU the hypervisor kept from running this long (ms) within one such
#: window: a tick due on it then is late whatever the service does
STOLEN_MS = 20
#: the worker logs each tick this far behind (`media.stalled`, with where the time
#: went), so a late second can be told apart: the worker's work, a wait for a CPU, or
#: neither (blocked, or the machine paused)
STALL_LOG_MS = 20


class WindowWatch:
    """Seconds since `start` in which some counter of `read()` (by thread, or by CPU)
    grew by `limit` or more within one RUN_DELAY_EVERY_S window: when the machine, not
    the service's own work, held the service up.  Two such watches run in the soak:

    - run-queue waits (/proc schedstat, ns): a service thread waited CONTENDED_MS for
      a CPU the machine gave to other work (the load generator, other test workers);
    - steal (/proc/stat, ms in 10 ms steps): the hypervisor kept a virtual CPU from
      running at all for STOLEN_MS.
    """

    def __init__(self, start: float, read: Callable[[], dict[Any, int]], limit: float) -> None:
        self.start, self.read, self.limit = start, read, limit
        self.last = read()
        self.next = start
        self.seconds: set[int] = set()

    def __call__(self, now: float) -> None:
        if now < self.next:
            return
        self.next = now + RUN_DELAY_EVERY_S
        counts = self.read()
        grown = max((n - self.last.get(key, 0) for key, n in counts.items()), default=0)
        self.last = counts
        if grown >= self.limit:
            self.seconds.add(int(now - self.start))


def _around(seconds: Iterable[int]) -> set[int]:
    """The given seconds of the run and those either side of each (+-1 s)."""
    return {s + d for s in seconds for d in (-1, 0, 1)}


def _run_second(line: dict, start_wall: float) -> int:
    """The second of the measured run a service log line was written in."""
    stamp = datetime.fromisoformat(line["timestamp"].replace("Z", "+00:00"))
    return int(stamp.timestamp() - start_wall)


def _fds(pid: int) -> int:
    """Open file descriptors of the service and its workers."""
    return sum(len(os.listdir(f"/proc/{p}/fd")) for p in proc_tree(pid))


def _with_keys(phones: LitePhones) -> None:
    """Each call's caller keys a '5' once a second between its noise and timing bursts."""
    tone = g711.encode(to_int16(dtmf("5", 4 * FRAME)), "ulaw").tobytes()
    frames = [phones.quiet[i % len(phones.quiet)] for i in range(BURST_EVERY)]
    for j, i in enumerate(KEY_AT):
        frames[i] = tone[j * FRAME : (j + 1) * FRAME]
    phones.quiet = frames


@pytest.mark.parametrize(
    "n_calls,measured_s",
    [
        (20, 12.0),
        pytest.param(150, 3600.0, marks=[pytest.mark.soak, pytest.mark.timeout(4000)]),
    ],
)
def test_calls_with_speech_and_keys_leak_nothing_over_time(tmp_path, n_calls, measured_s):
    phones = LitePhones(("127.0.0.1", 0), seed=13)
    _with_keys(phones)
    svc = ServiceProcess(
        pbx_port=phones.uas_port,
        workdir=tmp_path,
        media_ports=max(4 * n_calls + 64, 128),
        api=False,
        env={"MASKER_MEDIA_WORKERS": "1", "MASKER_MEDIA_STALL_LOG_MS": str(STALL_LOG_MS)},
    )
    phones.service = ("127.0.0.1", svc.sip_port)
    try:
        time.sleep(0.3)
        fds0, sockets0 = _fds(svc.pid), tree_sockets(svc.pid)
        calls = [phones.start_call(i) for i in range(n_calls)]
        assert drive_until_up(phones, calls, 10 + n_calls / 20), [c.state for c in calls]
        drive(phones, time.monotonic() + 4.0)  # warm-up: buffers, captures, caches
        rss0 = tree_rss_kib(svc.pid)
        rx0 = {c.call_id: len(c.rx.transit_ms) for c in calls}
        peak = rss0
        start, start_wall = time.monotonic(), time.time()
        end = start + measured_s
        contention = WindowWatch(start, lambda: tree_run_delays_ns(svc.pid), CONTENDED_MS * 1e6)
        steal = WindowWatch(start, cpu_steal_ms, STOLEN_MS)  # reported, not set aside

        def watch(now: float) -> None:
            contention(now)
            steal(now)

        while time.monotonic() < end:
            drive(phones, min(end, time.monotonic() + 5.0), each_tick=watch)
            peak = max(peak, tree_rss_kib(svc.pid))
        rss1 = tree_rss_kib(svc.pid)
        packets = 0
        late_at: Counter[int] = Counter()  # late packets per second of the measured run
        for c in calls:
            assert c.rx.transit_ms, "no audio reached the agent"
            base = min(c.rx.transit_ms)
            mine = c.rx.transit_ms[rx0[c.call_id] :]
            packets += len(mine)
            late_at.update(i // 50 for i, t in enumerate(mine) if t - base > LATE_MS)
        late = sum(late_at.values())
        # the generator's own stalls (a caller packet sent late is late at the agent too)
        sent_late = sum(1 for t in phones.send_late_ms if t > LATE_MS)
        stalled = _around(int(t - start) for t in phones.stalls)
        late_alone = sum(n for s, n in late_at.items() if s not in stalled)
        contended = _around(contention.seconds)
        late_uncontended = sum(
            n for s, n in late_at.items() if s not in stalled and s not in contended
        )
        for c in calls:
            phones.hangup(c)
        stop = time.monotonic() + 15
        while any(c.state != "ended" for c in calls) and time.monotonic() < stop:
            phones.poll_sip()
            phones.drain_media()
            phones.retransmit(time.monotonic())
            time.sleep(0.02)
        stop = time.monotonic() + 10
        while (
            _fds(svc.pid) > fds0 or tree_sockets(svc.pid) > sockets0
        ) and time.monotonic() < stop:
            time.sleep(0.2)
        fds1, sockets1 = _fds(svc.pid), tree_sockets(svc.pid)
        captures = sum(1 for line in svc.log_lines if line.get("event") == "capture started")
        gc_pauses = sorted(
            line.get("ms", 0.0)
            for line in svc.log_lines
            if line.get("event") == "gc pause" and line.get("ms", 0.0) >= 20
        )
        stalls = [
            {"s": _run_second(line, start_wall)}
            | {k: v for k, v in line.items() if k.endswith("_ms")}
            for line in svc.log_lines
            if line.get("event") == "media.stalled"
        ]
        near_late = _around(late_at)
        clock_steps = [int(t - start) for t in phones.clock_steps if t >= start]
        moves = [line for line in svc.log_lines if line.get("event") == "media.tick_moved"]
    finally:
        svc.stop()
        close_all(phones)
    growth = (rss1 - rss0) / rss0
    print(
        f"\nsoak {n_calls} calls x {measured_s:.0f} s: RSS {rss0} -> {rss1} KiB "
        f"({100 * growth:+.2f} %, peak {peak}), {packets} packets at the agent, {late} late "
        f"(>{LATE_MS:.0f} ms), fds {fds0} -> {fds1}, sockets {sockets0} -> {sockets1}"
        f"\nlate packets in {len(late_at)} seconds of the run, the worst (s: packets): "
        f"{sorted(late_at.most_common(8))}; collector pauses >= 20 ms: {gc_pauses}; "
        f"caller packets the generator sent > {LATE_MS:.0f} ms late: {sent_late}; "
        f"late packets outside the generator's own stalls (+-1 s): {late_alone}; "
        f"seconds the service waited >= {CONTENDED_MS:.0f} ms for a CPU: "
        f"{sorted(contention.seconds)}; late packets outside both: {late_uncontended}; "
        f"seconds a CPU was stolen >= {STOLEN_MS} ms by the hypervisor: {sorted(steal.seconds)}"
        f"\nwall clock steps (s): {clock_steps}, packets not timed for them: {phones.untimed}"
        f"\nworker ticks >= {STALL_LOG_MS} ms behind: {len(stalls)}, within +-1 s of a late "
        f"second: {[s for s in stalls if s['s'] in near_late]}; the worst: "
        f"{sorted(stalls, key=lambda s: -s['behind_ms'])[:5]}; tick phase moves: {len(moves)},"
        f" those past calls' packets (ms, packets): "
        f"{[(m['by_ms'], m['crossed']) for m in moves if m['crossed']]}"
    )
    assert captures >= n_calls  # every caller's keys reached the digit path
    assert packets >= 0.9 * n_calls * 50 * measured_s
    assert growth <= RSS_GROWTH
    # The hour-long soak runs alone and must be clean: no late packet the generator
    # did not itself send late (it shares the two cores with the service, and a
    # caller packet sent >= STALL_MS late is late at the agent whatever the service
    # does).  The short CI run shares the cores with other test workers too: late
    # packets while the service waited for a CPU they held are the box's, so only
    # those outside such moments count, and a hiccup may still delay a packet or two.
    if measured_s >= 600:
        assert late_alone == 0
    else:
        assert late_uncontended <= packets // 200
    assert (fds1, sockets1) == (fds0, sockets0)
