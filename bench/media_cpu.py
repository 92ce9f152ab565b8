"""Quick service CPU per call: N synthetic calls through `masker serve`, raw SIP and
RTP from Python, the service's CPU time read from /proc over a fixed window.

    python -m bench.media_cpu --calls 100 --seconds 10

Not a timed test; the pjsua2 benchmark is `make bench-calls`.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import signal
import socket
import sys
import tempfile
import threading
import time

import numpy as np

from dsp import g711
from masker.phones.procstat import proc_cpu_s, proc_rss_kib
from masker.phones.service_process import ServiceError, ServiceProcess
from masker.wire.rtp import build_rtp_fast

HOST = "127.0.0.1"


def _udp() -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((HOST, 0))
    s.setblocking(False)
    return s


def _sdp(port: int) -> str:
    return (
        f"v=0\r\no=b 1 1 IN IP4 {HOST}\r\ns=-\r\nc=IN IP4 {HOST}\r\nt=0 0\r\n"
        f"m=audio {port} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\n"
        "a=rtpmap:101 telephone-event/8000\r\na=ptime:20\r\n"
    )


def _msg(start: str, hdrs: list[str], body: str = "") -> bytes:
    h = (
        hdrs
        + (["Content-Type: application/sdp"] if body else [])
        + [f"Content-Length: {len(body)}"]
    )
    return ("\r\n".join([start, *h]) + "\r\n\r\n" + body).encode()


def _parse(data: bytes) -> tuple[str, dict[str, str], str]:
    head, _, body = data.decode().partition("\r\n\r\n")
    lines = head.split("\r\n")
    hdrs: dict[str, str] = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        hdrs.setdefault(k.strip().lower(), v.strip())
    return lines[0], hdrs, body


def _sdp_port(body: str) -> int:
    return int(next(ln for ln in body.split("\r\n") if ln.startswith("m=audio")).split()[1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=10.0)
    args = ap.parse_args(argv)
    n = args.calls
    work = tempfile.mkdtemp(prefix="masker-bench-")
    pbx = _udp()
    pbx.setblocking(True)
    cpu = None
    if (os.cpu_count() or 1) >= 2:  # the service on one core, this load generator on another
        cpu = 1
        os.sched_setaffinity(0, {0})
    svc = ServiceProcess(
        pbx_port=pbx.getsockname()[1], workdir=work, media_ports=8 * n + 100, cpu=cpu,
        api=False, env={"MASKER_SERVICE_DRAIN_GRACE_S": "1",
                        "MASKER_MEDIA_MAX_CALLS": str(max(n, 1))},
    )  # fmt: skip
    proc, sip_port = svc.proc, svc.sip_port
    rss0 = proc_rss_kib(proc.pid)
    # PBX: answer every INVITE with its own agent RTP socket, ACK/BYE handled loosely
    agents: dict[str, tuple[socket.socket, int]] = {}

    def pbx_loop() -> None:
        pbx.settimeout(0.2)
        while proc.poll() is None:
            try:
                data, src = pbx.recvfrom(65535)
            except (TimeoutError, OSError):
                continue
            start, h, body = _parse(data)
            if start.startswith("INVITE") and h["call-id"] not in agents:
                s = _udp()
                agents[h["call-id"]] = (s, _sdp_port(body))
                sdp = _sdp(s.getsockname()[1])
                pbx.sendto(
                    _msg(
                        "SIP/2.0 200 OK",
                        [
                            f"Via: {h['via']}",
                            f"From: {h['from']}",
                            f"To: {h['to']};tag=p",
                            f"Call-ID: {h['call-id']}",
                            f"CSeq: {h['cseq']}",
                            f"Contact: <sip:pbx@{HOST}:{pbx.getsockname()[1]}>",
                        ],
                        sdp,
                    ),
                    src,
                )
            elif start.startswith("BYE"):
                pbx.sendto(
                    _msg(
                        "SIP/2.0 200 OK",
                        [
                            f"Via: {h['via']}",
                            f"From: {h['from']}",
                            f"To: {h['to']}",
                            f"Call-ID: {h['call-id']}",
                            f"CSeq: {h['cseq']}",
                        ],
                    ),
                    src,
                )

    threading.Thread(target=pbx_loop, daemon=True).start()
    sip = _udp()
    sip.setblocking(True)
    sip.settimeout(5)
    callers = []
    for i in range(n):
        rtp = _udp()
        cid, uri = f"bench{i}-{secrets.token_hex(4)}", f"sip:agent{i}@{HOST}:{sip_port}"
        sip.sendto(
            _msg(
                f"INVITE {uri} SIP/2.0",
                [
                    f"Via: SIP/2.0/UDP {HOST}:{sip.getsockname()[1]};branch=z9hG4bK{cid}",
                    f"From: <sip:c@{HOST}>;tag=c{i}",
                    f"To: <{uri}>",
                    f"Call-ID: {cid}",
                    "CSeq: 1 INVITE",
                    f"Contact: <sip:c@{HOST}:{sip.getsockname()[1]}>",
                    "Max-Forwards: 70",
                ],
                _sdp(rtp.getsockname()[1]),
            ),
            (HOST, sip_port),
        )
        while True:
            start, h, body = _parse(sip.recvfrom(65535)[0])
            if start.startswith("SIP/2.0 200") and h["call-id"] == cid:
                break
        sip.sendto(
            _msg(
                f"ACK {uri} SIP/2.0",
                [
                    f"Via: SIP/2.0/UDP {HOST}:{sip.getsockname()[1]};branch=z9hG4bKa{cid}",
                    f"From: <sip:c@{HOST}>;tag=c{i}",
                    f"To: {h['to']}",
                    f"Call-ID: {cid}",
                    "CSeq: 1 ACK",
                    "Max-Forwards: 70",
                ],
            ),
            (HOST, sip_port),
        )
        callers.append((rtp, _sdp_port(body)))
    time.sleep(0.5)
    pairs = list(agents.values())
    payload = g711.ulaw_encode((np.sin(np.arange(160) * 0.3) * 3000).astype(np.int16)).tobytes()
    stop = threading.Event()

    # what the masker sends back is left unread: the kernel drops it once the socket
    # buffers are full, which keeps this load generator cheap enough for one core
    def sender() -> None:
        seq, ts, t0 = 0, 0, time.monotonic()
        while not stop.is_set():
            pkt = build_rtp_fast(0, seq, ts, 0x1234, payload, False)
            for rtp, port in callers:
                rtp.sendto(pkt, (HOST, port))
            for s, port in pairs:
                s.sendto(pkt, (HOST, port))
            seq, ts = seq + 1, ts + 160
            delay = t0 + seq * 0.02 - time.monotonic()
            if delay > 0:
                time.sleep(delay)

    th = threading.Thread(target=sender, daemon=True)
    t_start = time.monotonic()
    th.start()
    time.sleep(1.0)
    c0, w0 = proc_cpu_s(proc.pid), time.monotonic()
    time.sleep(args.seconds)
    c1, w1 = proc_cpu_s(proc.pid), time.monotonic()
    since = len(svc.log_lines)
    proc.send_signal(signal.SIGUSR1)
    try:
        stats = svc.wait_log("stats", timeout=3, since=since)
    except ServiceError:
        stats = {}
    stop.set()
    th.join()
    rss1 = proc_rss_kib(proc.pid)
    svc.stop(10)
    cpu = (c1 - c0) / (w1 - w0)
    print(
        json.dumps(
            {
                "calls": n,
                "service_cpu_core_fraction": round(cpu, 3),
                "cpu_per_call_pct": round(100 * cpu / max(n, 1), 3),
                "packets_per_s_in": 2 * n * 50,
                "late_ticks": stats.get("late_ticks"),
                "masked_packets": stats.get("masked_packets"),
                "ticks": stats.get("ticks"),
                "tick_us_avg": stats.get("tick_us_avg"),
                "caller_packets": stats.get("caller_packets"),
                "agent_packets": stats.get("agent_packets"),
                "sender_elapsed_s": round(time.monotonic() - t_start, 1),
                "rss_per_call_kb": round((rss1 - rss0) / max(n, 1), 1),
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
