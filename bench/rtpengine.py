"""rtpengine as the reference in `make bench-calls`: Debian's `rtpengine-daemon`,
userspace only (`--table=-1`: no kernel forwarding), on loopback, driven over its
ng control protocol (bencode dictionaries over UDP, each behind a cookie).

Each bench call is an ng `offer` (the caller's SDP, as `masker.phones.lite` sends
it), an `answer` (the agent's SDP) and a `block DTMF` for the caller's tag with
`DTMF-security=silence` and a `delay-buffer` as long as our look-ahead, with the
`detect DTMF` flag in all three (`block DTMF` resets it when it is left out).
That is rtpengine's in-band DTMF masking: the caller's audio is decoded (PCMU to
PCMU through its transcoder), spandsp's DTMF receiver runs on it, and keypad
tones are replaced with silence in the delayed output.  (Without `detect
DTMF` rtpengine 10.5 runs the in-band detector only when the caller offers no
telephone-event payload type; the bench SDP offers one.)  The agent's direction
is relayed as is, as ours relays it.

The RTP then flows through rtpengine's ports exactly as through `masker serve`'s:
caller socket -> rtpengine -> agent socket, agent socket -> rtpengine -> caller.
"""

from __future__ import annotations

import contextlib
import os
import random
import shutil
import socket
import subprocess
import threading
import time
from collections import deque
from typing import Any

import bencode

from masker.phones.lite import LiteCall, LitePhones, parse_sdp_media, sdp

#: flags in offer, answer and `block DTMF` (which resets what it does not repeat):
#: run the in-band DTMF detector on the decoded audio
CALL_FLAGS = ["detect DTMF"]


class RtpengineUnavailable(RuntimeError):
    """rtpengine is not installed, or did not start or answer."""


def version() -> str | None:
    """`rtpengine --version`, or None when it is not installed."""
    binary = shutil.which("rtpengine")
    if binary is None:
        return None
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return (out.stdout or out.stderr).strip().splitlines()[-1] if out.returncode == 0 else None


class Rtpengine:
    """One rtpengine daemon (optionally pinned to a core) and an ng client for it."""

    def __init__(
        self, cpu: int | None = None, ports: int = 4096, delay_ms: int = 40,
        mode: str = "silence", log_level: int = 5,
    ) -> None:  # fmt: skip
        binary = shutil.which("rtpengine")
        if binary is None:
            raise RtpengineUnavailable(
                "rtpengine is not installed (Debian: apt-get install rtpengine-daemon)"
            )
        self.delay_ms = delay_ms
        self.mode = mode
        self.ng = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.ng.bind(("127.0.0.1", 0))
        self.ng.settimeout(2.0)
        probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        probe.bind(("127.0.0.1", 0))
        self.ng_addr = probe.getsockname()
        probe.close()
        # below the kernel's ephemeral ports (32768-), where the load phones' sockets are;
        # rtpengine skips a port something else holds
        self.port_min = random.Random(os.getpid()).randrange(20000, 32000 - ports) & ~1
        self.port_max = self.port_min + ports - 1
        cmd = [
            binary, "--config-file=none", "--foreground", "--log-stderr",
            f"--log-level={log_level}", "--table=-1", "--interface=127.0.0.1",
            f"--listen-ng={self.ng_addr[0]}:{self.ng_addr[1]}",
            f"--port-min={self.port_min}", f"--port-max={self.port_max}",
            "--delete-delay=0",
        ]  # fmt: skip
        if cpu is not None:
            cmd = ["taskset", "-c", str(cpu), *cmd]
        self.log: deque[str] = deque(maxlen=5000)
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, errors="replace",
        )  # fmt: skip
        self._reader = threading.Thread(target=self._read_log, daemon=True)
        self._reader.start()
        self._cookie = 0
        deadline = time.monotonic() + 10
        while True:
            if self.proc.poll() is not None:
                self._reader.join(1)
                raise RtpengineUnavailable(
                    f"rtpengine exited with {self.proc.returncode}: " + " | ".join(self.log)
                )
            with contextlib.suppress(OSError, RtpengineUnavailable):
                if self.request("ping", timeout=0.3).get("result") == "pong":
                    break
            if time.monotonic() > deadline:
                self.stop()
                raise RtpengineUnavailable("rtpengine did not answer an ng ping in 10 s")
            time.sleep(0.1)

    def _read_log(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.log.append(line.rstrip())

    @property
    def pid(self) -> int:
        return self.proc.pid

    def request(self, command: str, timeout: float = 2.0, **params: Any) -> dict[str, Any]:
        """One ng request (`command` plus `params`, `_` in keys read as `-`) and its reply."""
        self._cookie += 1
        cookie = f"{os.getpid()}_{self._cookie}".encode()
        body = {"command": command} | {k.replace("_", "-"): v for k, v in params.items()}
        self.ng.settimeout(timeout)
        self.ng.sendto(cookie + b" " + bencode.encode(body), self.ng_addr)
        deadline = time.monotonic() + timeout
        while True:
            try:
                data = self.ng.recv(65535)
            except TimeoutError:
                raise RtpengineUnavailable(f"no ng reply to {command!r}") from None
            got, _, reply = data.partition(b" ")
            if got == cookie:
                return dict(bencode.decode(reply))
            if time.monotonic() > deadline:  # stale replies of earlier requests: skip
                raise RtpengineUnavailable(f"no ng reply to {command!r}")

    def _ok(self, command: str, **params: Any) -> dict[str, Any]:
        reply = self.request(command, **params)
        if reply.get("result") != "ok":
            raise RtpengineUnavailable(
                f"ng {command!r}: {reply.get('result')} {reply.get('error-reason', '')}"
            )
        return reply

    def connect(self, call: LiteCall) -> None:
        """Set a call up through rtpengine, masking in-band DTMF from the caller.

        The offer's SDP (what the agent would get) carries the port the agent
        sends to, the answer's (what the caller would get) the caller's."""
        to_tag = f"agent{call.n}"
        offer = self._ok(
            "offer", call_id=call.call_id, from_tag=call.from_tag, flags=CALL_FLAGS,
            ICE="remove", sdp=sdp(call.caller_rtp.getsockname()[1], call.n + 1),
        )  # fmt: skip
        answer = self._ok(
            "answer", call_id=call.call_id, from_tag=call.from_tag, to_tag=to_tag,
            flags=CALL_FLAGS, ICE="remove",
            sdp=sdp(call.agent_rtp.getsockname()[1], 10000 + call.n),
        )  # fmt: skip
        self._ok(
            "block DTMF", call_id=call.call_id, from_tag=call.from_tag, flags=CALL_FLAGS,
            DTMF_security=self.mode, delay_buffer=self.delay_ms,
        )  # fmt: skip
        call.to_tag = to_tag
        call.service_agent_rtp = parse_sdp_media(str(offer["sdp"]))
        call.service_caller_rtp = parse_sdp_media(str(answer["sdp"]))
        call.answered_at = time.monotonic()
        call.state = "up"

    def start_call(self, phones: LitePhones, n: int) -> LiteCall:
        """A load-phone call through rtpengine (no SIP: the ng protocol sets it up)."""
        call = phones.new_call(n)
        call.invite_at = time.monotonic()
        try:
            self.connect(call)
        except (OSError, RtpengineUnavailable, KeyError) as exc:
            call.state = f"failed {exc}"
        return call

    def hangup(self, call: LiteCall) -> None:
        """`delete` the call (its ports are freed at once: `--delete-delay=0`)."""
        with contextlib.suppress(OSError, RtpengineUnavailable):
            self._ok("delete", call_id=call.call_id)
        call.state = "ended"

    def stats(self) -> dict[str, Any]:
        """The ng `statistics` reply (current sessions, packets, ...), or {}."""
        try:
            return self.request("statistics").get("statistics", {})  # type: ignore[no-any-return]
        except (OSError, RtpengineUnavailable):
            return {}

    def stop(self, timeout: float = 10.0) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout)
        self.ng.close()
        return self.proc.returncode

    def __enter__(self) -> Rtpengine:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
