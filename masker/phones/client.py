"""Start and drive a phone process (`masker.phones.phone`) from Python.

Each `PhoneClient` owns one subprocess (up to four calls).  Commands are
synchronous (they wait for the phone's reply); events are collected by a reader
thread and can be awaited with `wait_event`.  Received digits stay in memory:
nothing here logs or prints them.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import structlog

from masker.phones.waiting import first_match

log = structlog.get_logger()

Event = dict[str, Any]


class PhoneError(RuntimeError):
    """A phone command failed or an awaited event did not come."""


def free_udp_port_block(size: int, low: int = 20000, high: int = 60000, tries: int = 200) -> int:
    """An even port where `size` consecutive UDP ports on 127.0.0.1 are free right now.

    RTP needs a port range rather than port 0; a random start keeps parallel
    test workers apart, and pjsua skips a port that got taken meanwhile.
    """
    rng = random.Random(os.getpid() ^ time.monotonic_ns())
    for _ in range(tries):
        base = rng.randrange(low, high - size) & ~1
        socks = []
        try:
            for port in range(base, base + size):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise PhoneError("no free UDP port block")


def wav_is_complete(path: str | Path) -> bool:
    """True when the RIFF header's size matches the file (the writer has closed it)."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
        size = os.path.getsize(path)
    except OSError:
        return False
    return len(head) == 8 and head[:4] == b"RIFF" and int.from_bytes(head[4:], "little") + 8 == size


def wait_wav_complete(path: str | Path, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not wav_is_complete(path):
        if time.monotonic() > deadline:
            raise PhoneError("recording was not finalised")
        time.sleep(0.02)


@dataclass
class PhoneCallLog:
    """What a client saw of one call: states, media, DTMF and INFO received."""

    call: int
    states: list[Event] = field(default_factory=list)
    media: list[Event] = field(default_factory=list)
    dtmf: list[Event] = field(default_factory=list, repr=False)
    infos: list[Event] = field(default_factory=list, repr=False)
    reinvites: list[Event] = field(default_factory=list)
    incoming: Event | None = field(default=None, repr=False)
    recorded: str | None = None

    @property
    def state(self) -> str:
        return self.states[-1]["state"] if self.states else "NULL"

    @property
    def final_code(self) -> int:
        return self.states[-1]["code"] if self.states else 0


class PhoneClient:
    """One phone process.  Use as a context manager so the process always ends."""

    def __init__(
        self,
        name: str = "phone",
        codecs: str = "PCMU,PCMA",
        rtp_ports: int = 16,
        ptime: int = 20,
        log_level: int = 1,
        cpu: int | None = None,
        sip_port: int = 0,
        address: str = "127.0.0.1",
        srtp: str = "off",
        tls_dir: str | Path | None = None,
        tls_port: int = 0,
    ):
        self.name = name
        self.address = address
        self.rtp_port = free_udp_port_block(rtp_ports)
        cmd = [
            sys.executable, "-m", "masker.phones.phone",
            "--address", address,
            "--sip-port", str(sip_port),
            "--rtp-port", str(self.rtp_port),
            "--rtp-range", str(rtp_ports),
            "--codecs", codecs,
            "--user", name,
            "--ptime", str(ptime),
            "--log-level", str(log_level),
            "--srtp", srtp,
            "--tls-dir", str(tls_dir or ""),
            "--tls-port", str(tls_port),
        ]  # fmt: skip
        if cpu is not None:
            cmd = ["taskset", "-c", str(cpu), *cmd]
        self._stderr = open(os.devnull, "wb") if log_level <= 1 else None  # noqa: SIM115 - closed in close()
        self.proc = subprocess.Popen(
            cmd,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            bufsize=1,
        )
        self._ids = itertools.count(1)
        self._cond = threading.Condition()
        self._replies: dict[int, Event] = {}
        self.events: list[Event] = []
        self.calls: dict[int, PhoneCallLog] = {}
        # pjsua reuses call slots: events of call N count from where it started
        self._call_since: dict[int, int] = {}
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        try:
            ready = self.wait_event(lambda e: e["event"] in ("ready", "exit"), timeout=15)
        except PhoneError:
            self.close()
            raise
        if ready["event"] == "exit":
            self.close()
            raise PhoneError(f"{name}: phone process failed to start")
        self.sip_port: int = ready["sip_port"]
        self.tls_port: int = ready.get("tls_port", 0)  # with tls_dir: SIP over TLS here
        self.pid: int = ready["pid"]

    # -- plumbing -----------------------------------------------------------
    def _read(self) -> None:
        assert self.proc.stdout is not None
        try:
            for line in self.proc.stdout:
                self._handle_line(line)
        except (OSError, ValueError):  # the pipe was closed under us by close()
            pass
        with self._cond:
            self.events.append({"event": "exit", "t": time.monotonic()})
            self._cond.notify_all()

    def _handle_line(self, line: str) -> None:
        try:
            msg = json.loads(line)
        except json.JSONDecodeError:
            return
        with self._cond:
            if "reply" in msg:
                self._replies[msg["reply"]] = msg
            else:
                self._record(msg)
                self.events.append(msg)
            self._cond.notify_all()

    def _record(self, ev: Event) -> None:
        if "call" not in ev:
            return
        rec = self.calls.setdefault(ev["call"], PhoneCallLog(ev["call"]))
        kind = ev["event"]
        if kind == "incoming":
            rec = self.calls[ev["call"]] = PhoneCallLog(ev["call"], incoming=ev)
            self._call_since[ev["call"]] = len(self.events)
        elif kind == "state":
            rec.states.append(ev)
        elif kind == "media":
            rec.media.append(ev)
        elif kind == "dtmf":
            rec.dtmf.append(ev)
        elif kind == "info_rx":
            rec.infos.append(ev)
        elif kind == "reinvite_rx":
            rec.reinvites.append(ev)
        elif kind == "recorded":
            rec.recorded = ev["path"]

    def command(self, cmd: str, timeout: float = 10.0, **args: Any) -> Event:
        """Send one command and return its reply; raise PhoneError if it failed."""
        cid = next(self._ids)
        line = json.dumps({"id": cid, "cmd": cmd, **args})
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(line + "\n")
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError) as exc:
            raise PhoneError(f"{self.name}: phone process is gone") from exc
        deadline = time.monotonic() + timeout
        with self._cond:
            while cid not in self._replies:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise PhoneError(f"{self.name}: no reply to {cmd}")
                self._cond.wait(left)
            reply = self._replies.pop(cid)
        if not reply.get("ok"):
            raise PhoneError(f"{self.name}: {cmd} failed: {reply.get('error')}")
        return reply

    def wait_event(
        self, match: Callable[[Event], bool], timeout: float = 10.0, since: int = 0
    ) -> Event:
        """The first event (from index `since`) that `match` accepts, waiting for it."""
        event = first_match(self._cond, self.events, match, timeout, since)
        if event is None:
            raise PhoneError(f"{self.name}: awaited event did not come")
        return event

    def wait_state(self, call: int, state: str, timeout: float = 10.0) -> Event:
        return self.wait_event(
            lambda e: e["event"] == "state" and e["call"] == call and e["state"] == state,
            timeout,
            self._call_since.get(call, 0),
        )

    def wait_media(self, call: int, status: str = "active", timeout: float = 10.0) -> Event:
        return self.wait_event(
            lambda e: e["event"] == "media" and e["call"] == call and e["status"] == status,
            timeout,
            self._call_since.get(call, 0),
        )

    def wait_call_event(self, call: int, kind: str, timeout: float = 10.0) -> Event:
        """The first event of `kind` for the current call in slot `call`."""
        return self.wait_event(
            lambda e: e["event"] == kind and e["call"] == call,
            timeout,
            self._call_since.get(call, 0),
        )

    def wait_incoming(self, timeout: float = 10.0, since: int = 0) -> Event:
        return self.wait_event(lambda e: e["event"] == "incoming", timeout, since)

    def wait_recorded(self, call: int, timeout: float = 10.0) -> str:
        """The path of the call's recording once the call ended and the WAV is complete."""
        ev = self.wait_call_event(call, "recorded", timeout)
        wait_wav_complete(ev["path"], timeout)
        return ev["path"]

    # -- phone operations ---------------------------------------------------
    @property
    def uri_host(self) -> str:
        return f"{self.address}:{self.sip_port}"

    def call(
        self,
        uri: str,
        headers: dict[str, str] | None = None,
        no_sdp: bool = False,
        record: str | Path | None = None,
    ) -> int:
        args: dict[str, Any] = {"uri": uri, "headers": headers or {}, "no_sdp": no_sdp}
        if record:
            args["record"] = str(record)
        with self._cond:
            since = len(self.events)
        call = int(self.command("call", **args)["call"])
        with self._cond:
            self._call_since[call] = since
            self.calls[call] = PhoneCallLog(call)
            # events of this call that raced ahead of the reply
            for ev in self.events[since:]:
                if ev.get("call") == call:
                    self._record(ev)
        return call

    def answer(self, call: int, code: int = 200, record: str | Path | None = None) -> None:
        args: dict[str, Any] = {"call": call, "code": code}
        if record:
            args["record"] = str(record)
        self.command("answer", **args)

    def hangup(self, call: int, code: int | None = None) -> None:
        args: dict[str, Any] = {"call": call}
        if code:
            args["code"] = code
        self.command("hangup", **args)

    def send_dtmf(
        self, call: int, digits: str, method: str, duration_ms: int = 160, interval_ms: int = 0
    ) -> None:
        """Key digits by signalling: method "rfc4733" (telephone-event) or "info".

        `interval_ms` > 0 sends one digit every interval, like a person keying;
        0 hands the whole string to pjsua at once.
        """
        self.command(
            "dtmf", call=call, digits=digits, method=method,
            duration_ms=duration_ms, interval_ms=interval_ms,
        )  # fmt: skip

    def send_info(self, call: int, content_type: str, body: str) -> None:
        """Send an in-dialog INFO with this content type and body."""
        self.command("send_info", call=call, content_type=content_type, body=body)

    def play(self, call: int, wav: str | Path, monitor: bool = False) -> float:
        """Start playing a WAV into the call; returns the monotonic start time.

        `monitor` mixes the WAV into this call's running recording as well.
        """
        reply = self.command("play", call=call, path=str(wav), monitor=monitor)
        return float(reply["t_start"])

    def echo(self, call: int) -> None:
        """Loop the call's received audio back to the far end."""
        self.command("echo", call=call)

    def record(self, call: int, wav: str | Path) -> None:
        self.command("record", call=call, path=str(wav))

    def stop_record(self, call: int) -> str | None:
        """Stop recording; returns the WAV path once the file is complete."""
        path = self.command("stop_record", call=call).get("path")
        if path:
            wait_wav_complete(path)
        return path

    def hold(self, call: int) -> None:
        self.command("hold", call=call)

    def unhold(self, call: int) -> None:
        self.command("unhold", call=call)

    def reinvite(self, call: int, codecs: list[str] | None = None) -> None:
        self.command("reinvite", call=call, codecs=codecs or [])

    def set_codecs(self, codecs: list[str]) -> None:
        self.command("codecs", codecs=codecs)

    def auto_answer(
        self,
        code: int = 200,
        early: int | None = None,
        delay_ms: int = 0,
        record_dir: str | Path | None = None,
        echo: bool = False,
    ) -> None:
        """Answer every incoming call: optional early response (183), then `code`;
        record each call into `record_dir`; `echo` loops received audio back."""
        args: dict[str, Any] = {"code": code, "delay_ms": delay_ms, "echo": echo}
        if early:
            args["early"] = early
        if record_dir:
            args["record_dir"] = str(record_dir)
        self.command("auto_answer", **args)

    def info(self, call: int) -> Event:
        return self.command("info", call=call)

    def active_calls(self) -> list[int]:
        return list(self.command("calls")["calls"])

    def close(self, timeout: float = 10.0) -> None:
        """Quit the phone (hangs up its calls) and reap the process."""
        if self.proc.poll() is None:
            with contextlib.suppress(PhoneError):
                self.command("quit", timeout=2)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(2)  # it ends at EOF; closing stdout first would race it
        for stream in (self.proc.stdin, self.proc.stdout):
            if stream:
                with contextlib.suppress(OSError):
                    stream.close()
        if self._stderr:
            self._stderr.close()

    def __enter__(self) -> PhoneClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
