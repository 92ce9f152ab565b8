"""`make bench-calls N=...`: N concurrent masked calls through a real `masker serve`.

The service runs pinned to one core (taskset); the calls come from
`masker.phones.lite` on the other core: real SIP INVITE/ACK/BYE over UDP and
20 ms G.711 RTP in both directions, measured at the agent side with kernel
receive timestamps.  (pjsua2 allows four calls per process, so hundreds of
calls would take a hundred pjsua2 processes; the pjsua2 phones are used by
`masker probe`, `make demo` and the e2e tests instead.)

Prints: service CPU per call, RTP packets per second, late and lost packets at
the agent, the added one-way delay of the audio (median, p99) and memory per
call.  `--find-max` steps N up to find the largest load one core carries with
no late packets.

Then the same N calls and streams go through rtpengine (Debian's
`rtpengine-daemon`, userspace, its in-band DTMF masking on: bench/rtpengine.py),
pinned to the same core and measured the same way, and a side-by-side table
follows (CPU per call and the ratio, late packets, added delay, memory).  Where
rtpengine is not installed or does not start, the bench says so and prints ours
alone.  The method: bench/README.md.

`--workers N` runs the service with N media worker processes (`[media] workers`):
with one it stays pinned to the first core, with more it may use every core (the
generator keeps the last); CPU and memory are then the whole process tree's.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from bench.rtpengine import Rtpengine, RtpengineUnavailable
from bench.rtpengine import version as rtpengine_version
from masker.media.loop import LANE_CHOICES
from masker.phones.lite import LiteCall, LitePhones, close_all
from masker.phones.procstat import (
    proc_cpu_s,
    proc_sockets,
    proc_tree,
    tree_cpu_s,
    tree_rss_kib,
    udp_drops,
)
from masker.phones.service_process import ServiceError, ServiceProcess

TICK = 0.020
#: A packet is late when its relative transit (arrival minus RTP timestamp, as in
#: RFC 3550) exceeds the call's smallest by more than one 20 ms frame.
LATE_MS = 20.0
#: the coarser count the side-by-side table with rtpengine prints (as the soak tests use)
LATE2_MS = 40.0


@dataclass
class BenchResult:
    calls: int
    established: int
    duration_s: float
    service_cpu_pct: float
    cpu_pct_per_call: float
    service_pps: float
    agent_packets: int
    expected_packets: int
    late_packets: int
    late40_packets: int
    back_packets: int
    back_late40_packets: int
    lost_packets: int
    jitter_p50_ms: float
    jitter_p99_ms: float
    delay_p50_ms: float
    delay_p99_ms: float
    delay_samples: int
    sender_late_p99_ms: float
    sender_late_max_ms: float
    generator_cpu_pct: float
    rss_idle_mib: float
    rss_per_call_kib: float
    sockets_left: int
    calls_not_ended: int
    service_rx_drops: int
    generator_rx_drops: int
    service_late_metric: float | None
    engine_stats: dict
    name: str = "masker serve"

    @property
    def sustained(self) -> bool:
        return (
            self.established == self.calls and self.late_packets == 0
            and self.lost_packets == 0 and self.service_rx_drops == 0
        )  # fmt: skip

    def render(self) -> str:
        return "\n".join([
            f"{self.name}: {self.established}/{self.calls} calls established,"
            f" measured {self.duration_s:.0f} s",
            f"  service CPU:       {self.service_cpu_pct:.1f}% of one core,"
            f" {self.cpu_pct_per_call:.3f}% per call",
            f"  RTP through it:    {self.service_pps:.0f} packets/s (in + out)",
            f"  at the agent:      {self.agent_packets} packets"
            f" ({100 * self.agent_packets / max(self.expected_packets, 1):.0f}% of"
            f" {self.expected_packets} sent at 50/s), {self.late_packets} late"
            f" (>{LATE_MS:.0f} ms behind; {self.late40_packets} >{LATE2_MS:.0f} ms),"
            f" {self.lost_packets} lost; back at the caller: {self.back_late40_packets} of"
            f" {self.back_packets} >{LATE2_MS:.0f} ms",
            f"  kernel drops:      {self.service_rx_drops} at the service's RTP sockets,"
            f" {self.generator_rx_drops} at the agent side's (receive buffers full)",
            f"  agent-side jitter: p50 {self.jitter_p50_ms:.1f} ms, p99 {self.jitter_p99_ms:.1f} ms"
            " (relative transit above the call's fastest packet)",
            f"  added delay:       p50 {self.delay_p50_ms:.1f} ms, p99 {self.delay_p99_ms:.1f} ms"
            f" one way, audio incl. look-ahead ({self.delay_samples} timing bursts)",
            f"  load generator:    {self.generator_cpu_pct:.0f}% CPU,"
            f" p99 {self.sender_late_p99_ms:.1f} ms, max {self.sender_late_max_ms:.1f} ms"
            " behind its own clock"
            + (" (late: late packets may be the generator's, in both directions)"
               if self.sender_late_max_ms > LATE2_MS else ""),
            f"  memory:            {self.rss_idle_mib:.1f} MiB idle,"
            f" {self.rss_per_call_kib:.0f} KiB per call",
            f"  after teardown:    {self.sockets_left} sockets more than before the calls,"
            f" {self.calls_not_ended} calls without a final BYE response",
            "  service late-packet metric: "
            + ("n/a" if self.service_late_metric is None else f"{self.service_late_metric:.0f}"),
            "  service media engine: " + ", ".join(
                f"{k}={v}" for k, v in self.engine_stats.items()
                if k in ("ticks", "late_ticks", "tick_us_avg", "caller_packets", "agent_packets",
                         "masked_packets", "calls", "underruns", "concealed_frames",
                         "concealed_by_tick_move", "shed_samples", "tick_phase_moves")
            ),
            f"  verdict: {'sustained' if self.sustained else 'NOT sustained'}",
        ])  # fmt: skip


def service_stats(svc: ServiceProcess) -> dict:
    """The media engine's counters, from the stats line SIGUSR1 makes the service log."""
    since = len(svc.log_lines)
    try:
        os.kill(svc.pid, signal.SIGUSR1)
        line = svc.wait_log("stats", timeout=3, since=since)
    except (OSError, ServiceError):
        return {}
    return {k: v for k, v in line.items() if isinstance(v, int | float)}


def service_metric(url: str, name: str, key: str | None = None) -> float | None:
    """A counter from /metrics (which needs a supervisor or metrics credential)."""
    req = urllib.request.Request(
        url + "/metrics", headers={"Authorization": f"Bearer {key}"} if key else {}
    )
    try:
        with urllib.request.urlopen(req, timeout=3) as resp:
            text = resp.read().decode()
    except OSError:
        return None
    total = None
    for line in text.splitlines():
        metric = line.split("{", 1)[0].split(" ", 1)[0]
        if metric in (name, name + "_total"):
            total = (total or 0.0) + float(line.rsplit(" ", 1)[1])
    return total


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) if values else float("nan")


def _drive(
    lite: LitePhones, pid: int, n_calls: int, duration_s: float, setup_rate: int,
    start_call: Callable[[int], LiteCall], drop_ports: tuple[int, int],
) -> dict[str, Any]:  # fmt: skip
    """Set up `n_calls` at `setup_rate`, warm up 2 s, then measure `duration_s` of
    20 ms RTP both ways through the process `pid` (the service or rtpengine)."""
    time.sleep(0.5)
    rss0 = tree_rss_kib(pid)
    sockets0 = proc_sockets(pid)
    calls: list[LiteCall] = []
    next_tick = time.monotonic()
    per_tick = max(1, setup_rate * TICK)
    started = 0.0
    setup_deadline = time.monotonic() + 30 + n_calls / setup_rate
    window: dict | None = None
    stop_at = None
    while True:
        now = time.monotonic()
        if len(calls) < n_calls:
            started += per_tick
            while len(calls) < min(n_calls, int(started)):
                calls.append(start_call(len(calls)))
        lite.poll_sip()
        lite.send_media(now, next_tick)
        lite.drain_media()
        up = sum(1 for c in calls if c.state == "up")
        if window is None and (up == n_calls or now > setup_deadline) and len(calls) == n_calls:
            window = {"warm_until": now + 2.0}
        if window is not None and "t0" not in window and now >= window["warm_until"]:
            window.update(
                t0=now, cpu0=tree_cpu_s(pid), sent0=lite.sent_packets,
                gen0=proc_cpu_s(os.getpid()), drops0=udp_drops(*drop_ports),
                back0=lite.caller_rx_packets, late0=len(lite.send_late_ms),
                backt0={c.call_id: len(c.back_transit_ms) for c in calls},
                rx0={c.call_id: (c.rx.packets, c.rx.lost, len(c.rx.transit_ms),
                                 len(c.rx.delays_ms)) for c in calls},
            )  # fmt: skip
            stop_at = now + duration_s
        if stop_at is not None and now >= stop_at:
            break
        next_tick += TICK
        delay = next_tick - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            next_tick = time.monotonic()
    assert window is not None
    t1 = time.monotonic()
    cpu1 = tree_cpu_s(pid)
    gen1 = proc_cpu_s(os.getpid())
    drops1 = udp_drops(*drop_ports)
    agent_ports = {c.agent_rtp.getsockname()[1] for c in calls}
    gen_drops = udp_drops(1, 0, agent_ports)
    rss1 = tree_rss_kib(pid)
    elapsed = t1 - window["t0"]
    packets = lost = late = late40 = back_packets = back_late40 = 0
    holds: list[float] = []
    delays: list[float] = []
    for c in calls:
        p0, l0, h0, d0 = window["rx0"].get(c.call_id, (0, 0, 0, 0))
        packets += c.rx.packets - p0
        lost += c.rx.lost - l0
        if c.rx.transit_ms[h0:]:  # the window's own fastest packet: rtpengine's delay
            window_transits = c.rx.transit_ms[h0:]  # buffer starts only with `block DTMF`
            base = min(window_transits)
            mine = [h - base for h in window_transits]
            holds += mine
            late += sum(1 for h in mine if h > LATE_MS)
            late40 += sum(1 for h in mine if h > LATE2_MS)
        delays += c.rx.delays_ms[d0:]
        back_transits = c.back_transit_ms[window["backt0"].get(c.call_id, 0) :]
        if back_transits:  # the agent's RTP at the caller (every 10th call's socket)
            base = min(back_transits)
            mine = [h - base for h in back_transits]
            back_packets += len(mine)
            back_late40 += sum(1 for h in mine if h > LATE2_MS)
    sent = lite.sent_packets - window["sent0"]
    back = lite.caller_rx_packets - window["back0"]
    established = sum(1 for c in calls if c.state == "up")
    cpu_pct = 100 * (cpu1 - window["cpu0"]) / elapsed
    return dict(
        calls=calls, rss0=rss0, sockets0=sockets0,
        fields=dict(
            calls=n_calls, established=established, duration_s=elapsed,
            service_cpu_pct=cpu_pct, cpu_pct_per_call=cpu_pct / max(established, 1),
            service_pps=(sent + packets + back) / elapsed, agent_packets=packets,
            expected_packets=int(established * 50 * elapsed),
            late_packets=late, late40_packets=late40, lost_packets=lost,
            back_packets=back_packets, back_late40_packets=back_late40,
            jitter_p50_ms=percentile(holds, 50), jitter_p99_ms=percentile(holds, 99),
            delay_p50_ms=percentile(delays, 50), delay_p99_ms=percentile(delays, 99),
            delay_samples=len(delays), rss_idle_mib=rss0 / 1024,
            sender_late_p99_ms=percentile(lite.send_late_ms[window["late0"]:], 99),
            sender_late_max_ms=max(lite.send_late_ms[window["late0"]:], default=0.0),
            generator_cpu_pct=100 * (gen1 - window["gen0"]) / elapsed,
            rss_per_call_kib=(rss1 - rss0) / max(established, 1),
            service_rx_drops=drops1 - window["drops0"], generator_rx_drops=gen_drops,
        ),
    )  # fmt: skip


def _prioritise(pids: list[int]) -> None:
    """Busy machine: renice the measured process to -10, run the generator SCHED_RR."""
    for pid in (os.getpid(), *pids):
        for tid in os.listdir(f"/proc/{pid}/task"):  # nice is per thread on Linux
            os.setpriority(os.PRIO_PROCESS, int(tid), -10)
    # the generator's clock must tick on time (it needs ~10% of a core)
    with contextlib.suppress(OSError):
        os.sched_setscheduler(0, os.SCHED_RR, os.sched_param(10))


def service_pinning(service_cpu: int | None, workers: str | None) -> int | None:
    """The core the service is pinned to: the first, unless it has several media
    workers (then none: they may use every core)."""
    if workers is not None and workers != "1" and workers != "0":
        return None
    return service_cpu


def run_bench(
    n_calls: int, duration_s: float, setup_rate: int, service_cpu: int | None,
    load_cpu: int | None, workdir: str, priority: bool = False, lookahead_ms: int | None = None,
    workers: str | None = None, lanes: int | None = None,
) -> BenchResult:  # fmt: skip
    """N calls through `masker serve` (its defaults, or `lookahead_ms` of masking; or
    `workers` media worker processes, on every core when more than one; or `lanes`
    sub-ticks a frame)."""
    if load_cpu is not None:
        os.sched_setaffinity(0, {load_cpu})
    lite = LitePhones(("127.0.0.1", 0))
    lite.time_back = True
    env = {} if lookahead_ms is None else {"MASKER_MEDIA_LOOKAHEAD_MS": str(lookahead_ms)}
    if workers is not None:
        env["MASKER_MEDIA_WORKERS"] = workers
    if lanes is not None:
        env["MASKER_MEDIA_LANES"] = str(lanes)
    svc = ServiceProcess(
        pbx_port=lite.uas_port, workdir=workdir, media_ports=max(4 * n_calls + 64, 128),
        cpu=service_pinning(service_cpu, workers), log_level="info", env=env,
    )  # fmt: skip
    lite.service = ("127.0.0.1", svc.sip_port)
    if priority:  # other work on a shared machine must not be what is measured
        _prioritise(proc_tree(svc.proc.pid))
    try:
        m = _drive(
            lite, svc.pid, n_calls, duration_s, setup_rate, lite.start_call,
            (svc.media_min, svc.media_max),
        )  # fmt: skip
        calls = m["calls"]
        late_metric = service_metric(svc.api_url, "masker_media_late_packets", svc.api_key)
        engine = service_stats(svc)
        for c in calls:
            if c.state == "up":
                lite.hangup(c)
        end = time.monotonic() + 30
        while time.monotonic() < end and any(c.state not in ("ended",) for c in calls):
            lite.poll_sip()
            lite.drain_media()
            lite.retransmit(time.monotonic())
            time.sleep(0.02)
        not_ended = sum(1 for c in calls if c.state != "ended")
        end = time.monotonic() + 10  # media is freed right after the BYE transaction
        while proc_sockets(svc.pid) > m["sockets0"] and time.monotonic() < end:
            time.sleep(0.2)
        sockets_left = proc_sockets(svc.pid) - m["sockets0"]
        return BenchResult(
            **m["fields"], sockets_left=sockets_left, calls_not_ended=not_ended,
            engine_stats=engine, service_late_metric=late_metric,
            name=("masker serve" if lookahead_ms is None else f"ours, {lookahead_ms} ms")
            + ("" if workers is None else f", {workers} media worker(s)"),
        )  # fmt: skip
    finally:
        svc.stop()
        close_all(lite)


def run_rtpengine(
    n_calls: int, duration_s: float, setup_rate: int, service_cpu: int | None,
    load_cpu: int | None, priority: bool = False, delay_ms: int = 40,
) -> BenchResult:  # fmt: skip
    """The same calls and streams through rtpengine (bench/rtpengine.py), pinned to
    the service's core; raises RtpengineUnavailable when it cannot run."""
    if load_cpu is not None:
        os.sched_setaffinity(0, {load_cpu})
    lite = LitePhones(("127.0.0.1", 0))
    lite.time_back = True
    ports = min(8 * n_calls + 256, 11000)
    engine = Rtpengine(cpu=service_cpu, ports=ports, delay_ms=delay_ms)
    if priority:
        _prioritise([engine.pid])
    try:
        m = _drive(
            lite, engine.pid, n_calls, duration_s, setup_rate,
            lambda n: engine.start_call(lite, n), (engine.port_min, engine.port_max),
        )  # fmt: skip
        calls = m["calls"]
        stats = engine.stats().get("currentstatistics", {})
        for c in calls:
            engine.hangup(c)
        end = time.monotonic() + 10
        while proc_sockets(engine.pid) > m["sockets0"] and time.monotonic() < end:
            time.sleep(0.2)
        sockets_left = proc_sockets(engine.pid) - m["sockets0"]
        return BenchResult(
            **m["fields"], sockets_left=sockets_left, calls_not_ended=0,
            engine_stats={k: v for k, v in stats.items() if isinstance(v, int | float)},
            service_late_metric=None, name="rtpengine",
        )  # fmt: skip
    finally:
        engine.stop()
        close_all(lite)


def side_by_side(ours: list[BenchResult], theirs: BenchResult | None, why: str = "") -> str:
    """Our figures (one column per look-ahead) beside rtpengine's (same calls,
    streams, core and measurement)."""
    cols = [(r.name, r) for r in ours]
    if theirs is None:
        return f"rtpengine: not measured ({why}); ours alone:\n" + _column_table(cols)
    lines = [_column_table([*cols, ("rtpengine", theirs)])]
    for r in ours:
        ratio = r.cpu_pct_per_call / theirs.cpu_pct_per_call if theirs.cpu_pct_per_call else 0
        lines.append(f"  CPU per call ratio {r.name} / rtpengine: {ratio:.2f}")
    return "\n".join(lines)


def _column_table(cols: list[tuple[str, BenchResult]]) -> str:
    rows = [
        ("calls established", lambda r: f"{r.established}/{r.calls}"),
        ("CPU % of a core per call", lambda r: f"{r.cpu_pct_per_call:.3f}"),
        ("CPU % of the core", lambda r: f"{r.service_cpu_pct:.1f}"),
        (f"late > {LATE2_MS:.0f} ms (> {LATE_MS:.0f}), to agent",
         lambda r: f"{r.late40_packets} ({r.late_packets}) of {r.agent_packets}"),
        (f"late > {LATE2_MS:.0f} ms, back to caller",
         lambda r: f"{r.back_late40_packets} of {r.back_packets}"),
        ("lost / kernel drops", lambda r: f"{r.lost_packets} / {r.service_rx_drops}"),
        ("added delay caller->agent p50 / p99 ms",
         lambda r: f"{r.delay_p50_ms:.1f} / {r.delay_p99_ms:.1f}"),
        ("memory per call KiB", lambda r: f"{r.rss_per_call_kib:.0f}"),
        ("generator p99 / max behind ms",
         lambda r: f"{r.sender_late_p99_ms:.1f} / {r.sender_late_max_ms:.1f}"),
    ]  # fmt: skip
    width = max(len(name) for name, _ in rows) + 2
    lines = ["".ljust(width) + "".join(name.rjust(26) for name, _ in cols)]
    for name, get in rows:
        lines.append(name.ljust(width) + "".join(get(r).rjust(26) for _, r in cols))
    return "\n".join("  " + line for line in lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.calls", description=__doc__.splitlines()[0])
    p.add_argument("--calls", type=int, default=200, help="concurrent calls (default 200)")
    p.add_argument("--duration", type=float, default=20.0, help="measured seconds (default 20)")
    p.add_argument("--setup-rate", type=int, default=50, help="new calls per second")
    p.add_argument(
        "--find-max", action="store_true",
        help="step N up (50, 100, ...) until packets are late; report the largest",
    )  # fmt: skip
    p.add_argument("--step", type=int, default=50)
    p.add_argument(
        "--priority", action="store_true",
        help="busy machine: renice the service to -10, run the generator SCHED_RR (root)",
    )  # fmt: skip
    p.add_argument("--json", action="store_true")
    p.add_argument(
        "--no-rtpengine", action="store_true",
        help="skip the same calls through rtpengine (bench/rtpengine.py)",
    )  # fmt: skip
    p.add_argument(
        "--lookahead", default="default",
        help="our look-ahead(s) in ms, one run each, comma-separated, 'default' for the"
        " service's own (20 ms; the default), e.g. default,40",
    )  # fmt: skip
    p.add_argument(
        "--workers", default=None,
        help="[media] workers of the service (default: its own): 0 = in-process media"
        " thread, N processes (more than one: the service may use every core), auto",
    )  # fmt: skip
    p.add_argument(
        "--lanes", type=int, choices=LANE_CHOICES, default=None,
        help="[media] lanes of the service: sub-ticks a frame (default: its own, 1)",
    )  # fmt: skip
    p.add_argument(
        "--rtpengine-delay", type=int, default=40,
        help="rtpengine's delay buffer in ms (default 40: our look-ahead)",
    )  # fmt: skip
    args = p.parse_args(argv)
    cpus = sorted(os.sched_getaffinity(0))
    service_cpu = cpus[0] if len(cpus) > 1 else None
    load_cpu = cpus[1] if len(cpus) > 1 else None
    print(
        f"bench-calls: masker serve on cpu {service_cpu}, load generator (masker.phones.lite:"
        f" real SIP + RTP over UDP, not pjsua2) on cpu {load_cpu}",
        file=sys.stderr,
    )
    lookaheads: list[int | None] = [
        None if x == "default" else int(x) for x in args.lookahead.split(",")
    ]
    results = []
    sizes = [args.calls]
    if args.find_max:
        sizes = list(range(args.step, args.calls + 1, args.step)) or [args.calls]
        lookaheads = lookaheads[:1]
    best = 0
    for n in sizes:
        for la in lookaheads:
            with tempfile.TemporaryDirectory(prefix="masker-bench-") as wd:
                r = run_bench(
                    n, args.duration, args.setup_rate, service_cpu, load_cpu, wd, args.priority,
                    la, args.workers, args.lanes,
                )  # fmt: skip
            results.append(r)
            if not args.json:
                print(r.render(), flush=True)
        if results[-1].sustained:
            best = n
        elif args.find_max:
            break
    theirs: BenchResult | None = None
    why = "--no-rtpengine" if args.no_rtpengine else "--find-max" if args.find_max else ""
    if not why:
        version = rtpengine_version()
        if version is None:
            why = "rtpengine is not installed (Debian: apt-get install rtpengine-daemon)"
        else:
            print(
                f"bench-calls: the same {args.calls} calls through rtpengine ({version},"
                f" userspace, in-band DTMF masking, {args.rtpengine_delay} ms delay buffer)"
                f" on cpu {service_cpu}",
                file=sys.stderr,
            )
            try:
                theirs = run_rtpengine(
                    args.calls, args.duration, args.setup_rate, service_cpu, load_cpu,
                    args.priority, args.rtpengine_delay,
                )  # fmt: skip
            except RtpengineUnavailable as exc:
                why = f"rtpengine could not run: {exc}"
    if args.json:
        out = [asdict(r) | {"sustained": r.sustained} for r in results]
        if theirs is not None:
            out.append(asdict(theirs) | {"sustained": theirs.sustained, "engine": "rtpengine"})
        print(json.dumps(out, indent=2))
    elif args.find_max:
        print(f"largest N sustained on one core with no late or lost packets: {best}")
    else:
        if theirs is not None:
            print(theirs.render())
        print("\nside by side (same calls, streams, core and measurement):")
        print(side_by_side(results[-len(lookaheads) :], theirs, why), flush=True)
    return 0 if results and results[-1].sustained or best else 1


if __name__ == "__main__":
    sys.exit(main())
