"""How a burst of new calls delays the media of the calls already up.

    python -m bench.sip_burst --calls 100 --burst 50 --rate 50

`masker serve` pinned to one core, `masker.phones.lite` on the other (as
bench/calls.py).  `--calls` calls are set up and warmed up; then the agent-side
relative transit of their masked RTP (kernel receive timestamps, RFC 3550 sense,
above each call's fastest packet of the quiet window) is measured for
`--window` seconds with no signalling ("quiet"), then for as long as `--burst`
new calls take to set up at `--rate` per second ("burst").  The SIP thread
(sippy) and the media thread share the process's GIL: whatever the SIP side
holds it for, the media tick waits.  Also printed: the CPU seconds of the
service's busiest non-media thread (the SIP main loop) per new call, and the
media engine's late ticks in each window.

`--workers N` gives the service N media worker processes (`[media] workers`; one:
still pinned to the first core, more: every core, the generator keeping the last):
the SIP loop and the media then hold separate GILs.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

import numpy as np

from bench.calls import TICK, service_pinning, service_stats
from masker.phones.lite import LiteCall, LitePhones, close_all, drive
from masker.phones.service_process import ServiceProcess


def _thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (user + system) of each thread of `pid`."""
    ticks = os.sysconf("SC_CLK_TCK")
    out: dict[int, float] = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def _pump(lite: LitePhones, until: float, start: int, rate: float, calls: list[LiteCall]) -> None:
    """Drive media (and SIP) until `until`, starting `start` new calls at `rate`/s."""
    t0 = time.monotonic()
    target = len(calls) + start

    def start_due(now: float) -> None:
        while len(calls) < target and len(calls) - (target - start) < (now - t0) * rate:
            calls.append(lite.start_call(len(calls)))

    drive(lite, until, TICK, each_tick=start_due)


def _lateness(
    calls: list[LiteCall], start: dict[str, int], end: dict[str, int], base: dict[str, float]
) -> list[float]:
    """Relative transit (ms) of the calls' packets between two marks, above `base`."""
    held: list[float] = []
    for c in calls:
        if c.call_id in base:
            held += [
                t - base[c.call_id] for t in c.rx.transit_ms[start[c.call_id] : end[c.call_id]]
            ]
    return held


def _summary(name: str, held: list[float], late_ticks: int) -> str:
    if not held:
        return f"  {name:6} no packets"
    arr = np.asarray(held)
    return (
        f"  {name:6} {len(arr):7d} packets: relative transit p50 {np.percentile(arr, 50):6.1f}"
        f" ms, p99 {np.percentile(arr, 99):6.1f} ms, max {arr.max():6.1f} ms;"
        f" > 20 ms: {int((arr > 20).sum())}, > 40 ms: {int((arr > 40).sum())};"
        f" media late ticks {late_ticks}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.sip_burst", description=__doc__.split("\n")[0]
    )
    p.add_argument("--calls", type=int, default=100, help="calls up before the burst")
    p.add_argument("--burst", type=int, default=50, help="new calls in the burst")
    p.add_argument("--rate", type=float, default=50.0, help="new calls per second in the burst")
    p.add_argument("--window", type=float, default=5.0, help="quiet window, seconds")
    p.add_argument("--workers", default=None, help="[media] workers (default: the service's)")
    args = p.parse_args(argv)
    cpus = sorted(os.sched_getaffinity(0))
    service_cpu, load_cpu = (cpus[0], cpus[1]) if len(cpus) > 1 else (None, None)
    if load_cpu is not None:
        os.sched_setaffinity(0, {load_cpu})
    lite = LitePhones(("127.0.0.1", 0))
    with tempfile.TemporaryDirectory(prefix="masker-bench-") as wd:
        n_all = args.calls + args.burst
        svc = ServiceProcess(
            pbx_port=lite.uas_port, workdir=wd, media_ports=max(4 * n_all + 64, 128),
            cpu=service_pinning(service_cpu, args.workers), log_level="info",
            env=None if args.workers is None else {"MASKER_MEDIA_WORKERS": args.workers},
        )  # fmt: skip
        lite.service = ("127.0.0.1", svc.sip_port)
        try:
            calls: list[LiteCall] = []
            _pump(lite, time.monotonic() + args.calls / 50 + 3.0, args.calls, 50, calls)
            up = [c for c in calls if c.state == "up"]

            def mark() -> dict[str, int]:
                return {c.call_id: len(c.rx.transit_ms) for c in up}

            m0, late0 = mark(), service_stats(svc).get("late_ticks", 0)
            _pump(lite, time.monotonic() + args.window, 0, 0, calls)
            m1, late1 = mark(), service_stats(svc).get("late_ticks", 0)
            base = {
                c.call_id: min(c.rx.transit_ms[m0[c.call_id] : m1[c.call_id]])
                for c in up
                if m1[c.call_id] > m0[c.call_id]
            }
            cpu0 = _thread_cpu(svc.pid)
            _pump(
                lite, time.monotonic() + args.burst / args.rate + 1.0, args.burst, args.rate, calls
            )
            cpu1 = _thread_cpu(svc.pid)
            m2, late2 = mark(), service_stats(svc).get("late_ticks", 0)
        finally:
            svc.stop()
            close_all(lite)
    quiet_held = _lateness(up, m0, m1, base)
    burst_held = _lateness(up, m1, m2, base)
    deltas = sorted(((cpu1.get(t, 0) - cpu0.get(t, 0)), t) for t in cpu1)
    sip_s = cpu1.get(svc.pid, 0) - cpu0.get(svc.pid, 0)  # sippy's loop: the main thread
    new_up = sum(1 for c in calls[args.calls :] if c.state == "up")
    print(
        f"sip_burst: {len(up)} calls up, then {args.burst} new at {args.rate:.0f}/s"
        f" ({new_up} answered); service on cpu"
        f" {service_pinning(service_cpu, args.workers)}, generator on cpu {load_cpu},"
        f" media workers {args.workers or 'default'}"
    )
    print(_summary("quiet", quiet_held, late1 - late0))
    print(_summary("burst", burst_held, late2 - late1))
    print(
        "  service threads' CPU during the burst (s): "
        + ", ".join(f"{d:.2f}" for d, _ in reversed(deltas) if d > 0)
        + f"; the SIP main loop's per new call: {1000 * sip_s / max(new_up, 1):.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
