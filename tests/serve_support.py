"""`masker serve` as a subprocess on free loopback ports, for the SIP/media tests.

The PBX side is a SipEndpoint the test owns; the service's JSON log lines are
collected so tests can assert on call events (and on the absence of digits).
"""

from __future__ import annotations

import json
import os
import random
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from sipclient import HOST, SipEndpoint, ack_for, sdp_offer

ROOT = Path(__file__).resolve().parent.parent


def free_port_block(size: int) -> int:
    """An even port with `size` free consecutive UDP ports (random start: parallel workers)."""
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(200):
        base = rng.randrange(30000, 60000 - size) & ~1
        socks = []
        try:
            for port in range(base, base + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((HOST, port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free UDP port block")


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Served:
    """A running `masker serve` with a test-owned PBX endpoint."""

    def __init__(self, workdir: Path, env_extra: dict[str, str] | None = None,
                 media_ports: int = 200) -> None:
        self.pbx = SipEndpoint("pbx")
        self.sip_port = free_udp_port()
        self.rtp_min = free_port_block(media_ports)
        self.rtp_max = self.rtp_min + media_ports - 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("MASKER_")}
        env.update({
            "MASKER_SIP_LISTEN_PORT": str(self.sip_port),
            "MASKER_PBX_PORT": str(self.pbx.port),
            "MASKER_MEDIA_PORT_MIN": str(self.rtp_min),
            "MASKER_MEDIA_PORT_MAX": str(self.rtp_max),
            "MASKER_SERVICE_API_ENABLED": "false",
            "MASKER_SERVICE_DRAIN_GRACE_S": "2",
            "MASKER_TOKENIZER_VAULT_PATH": str(workdir / "vault.sqlite"),
            "MASKER_TOKENIZER_KEYS_DIR": str(workdir / "keys"),
            "PYTHONPATH": str(ROOT),
        })
        env.update(env_extra or {})
        self.lines: list[dict] = []
        self.raw: list[str] = []
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "masker.cli", "serve"], cwd=workdir, env=env,
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True,
        )
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_log("service ready", timeout=20)

    @property
    def addr(self) -> tuple[str, int]:
        return (HOST, self.sip_port)

    def uri(self, user: str = "agent1") -> str:
        return f"sip:{user}@{HOST}:{self.sip_port}"

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.raw.append(line)
                try:
                    self.lines.append(json.loads(line))
                except json.JSONDecodeError:
                    pass
                self._cond.notify_all()

    def wait_log(self, event: str, timeout: float = 5.0, **match) -> dict:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for obj in self.lines:
                    if obj.get("event") == event and all(obj.get(k) == v for k, v in match.items()):
                        return obj
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    tail = "".join(self.raw[-15:])
                    raise AssertionError(f"no log line {event!r} {match}; tail:\n{tail}")
                self._cond.wait(left)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.pbx.close()
        return self.proc.returncode


def answered_call(served: Served, caller: SipEndpoint) -> tuple[str, str, str, str, str]:
    """INVITE -> PBX 200 -> ACK on a fresh agent user; returns
    (uri, caller Call-ID, caller tag, PBX to-tag, agent-leg Call-ID)."""
    user = "agent" + secrets.token_hex(3)
    uri, cid, tag = served.uri(user), secrets.token_hex(6), "t1"
    caller.send_raw(caller.request("INVITE", uri, call_id=cid, from_tag=tag,
                                   body=sdp_offer(4000)), served.addr)
    inv = served.pbx.expect("INVITE", user=user)
    served.pbx.reply(inv, 200, body=sdp_offer(4100), to_tag="p")
    ok = caller.expect(200)
    caller.send_raw(ack_for(caller, ok, uri, cid, tag), served.addr)
    return uri, cid, tag, ok.tag("To"), inv.header("Call-ID")
