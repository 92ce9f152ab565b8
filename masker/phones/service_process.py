"""Run `masker serve` as a subprocess on free loopback ports (tests, demo, bench).

The one launcher of a real service: it writes a TOML config into a private
directory (vault, development keys and, unless disabled, the API with a
supervisor key passed by environment), starts the service on ports found free
(again on fresh ones if another process took one meanwhile), waits until it
answers SIP and keeps its log lines for inspection.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import masker
from masker.phones.client import free_udp_port_block
from masker.phones.waiting import first_match

API_KEY_ENV = "MASKER_TEST_SUPERVISOR_KEY"
#: The directory `masker` is imported from: the service runs the same code as its caller.
SOURCE_ROOT = Path(masker.__file__).resolve().parent.parent


class ServiceError(RuntimeError):
    """The service did not start or stop as expected."""


START_ATTEMPTS = 3
EXIT_USER_ERROR = 2  # `masker serve` refused to start (e.g. a port is taken)

LogLine = dict[str, Any]


def free_port(kind: int = socket.SOCK_DGRAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This process's environment without its MASKER_* settings, plus `extra`: a
    service whose configuration is only what its caller chose."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MASKER_")}
    if (SOURCE_ROOT / "pyproject.toml").exists():  # a checkout, maybe not the installed one
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(SOURCE_ROOT), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


def sip_options_ping(addr: tuple[str, int], wait: float = 0.3, source: str = "127.0.0.1") -> int:
    """Send one SIP OPTIONS from `source`; the response's status code, or 0 if none came."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((source, 0))
        port = s.getsockname()[1]
        tag = secrets.token_hex(4)
        msg = (
            f"OPTIONS sip:ping@{addr[0]}:{addr[1]} SIP/2.0\r\n"
            f"Via: SIP/2.0/UDP {source}:{port};branch=z9hG4bK{secrets.token_hex(6)};rport\r\n"
            "Max-Forwards: 70\r\n"
            f"From: <sip:probe@{source}:{port}>;tag={tag}\r\n"
            f"To: <sip:ping@{addr[0]}:{addr[1]}>\r\n"
            f"Call-ID: {secrets.token_hex(8)}@{source}\r\n"
            "CSeq: 1 OPTIONS\r\n"
            "Content-Length: 0\r\n\r\n"
        )
        s.sendto(msg.encode(), addr)
        s.settimeout(wait)
        try:
            data = s.recv(65535)
        except OSError:
            return 0
    first = data.split(b"\r\n", 1)[0].split()
    return int(first[1]) if len(first) > 1 and first[1].isdigit() else 0


def log_matcher(
    match: str | Callable[[LogLine], bool], fields: Mapping[str, Any]
) -> Callable[[LogLine], bool]:
    """A log line test: `match` is a predicate or an event name; every field must equal."""

    def accepts(line: LogLine) -> bool:
        hit = match(line) if callable(match) else line.get("event") == match
        return hit and all(line.get(k) == v for k, v in fields.items())

    return accepts


class ServiceProcess:
    """`masker serve` on 127.0.0.1: trunk side at `sip_port`, agent leg to `pbx_port`.

    `env` adds environment variables (MASKER_<SECTION>_<KEY> overrides the TOML);
    `api=False` runs without the API.  `extra_toml` is appended to the config: it
    lands in the [api] table, or in [tokenizer] without the API.  `sip_port` and
    `api_port` fix those ports (a cluster node keeps its addresses across a restart).
    """

    def __init__(
        self,
        pbx_port: int,
        workdir: str | Path | None = None,
        media_ports: int = 400,
        extra_toml: str = "",
        cpu: int | None = None,
        log_level: str = "info",
        start_timeout: float = 20.0,
        api: bool = True,
        env: Mapping[str, str] | None = None,
        sip_port: int | None = None,
        api_port: int | None = None,
    ):
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="masker-serve-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.pbx_port = pbx_port
        self.media_ports = media_ports
        self.api_enabled = api
        self.fixed_sip_port = sip_port
        self.fixed_api_port = api_port
        self.api_key = secrets.token_urlsafe(24)
        self.api_port: int | None = None
        self.config_path = self.workdir / "masker.toml"
        env = serve_env({API_KEY_ENV: self.api_key, **(env or {})})
        cmd = [sys.executable, "-m", "masker.cli", "serve", "--config", str(self.config_path)]
        if cpu is not None:
            cmd = ["taskset", "-c", str(cpu), *cmd]
        # Ports found free here can be taken by another process before the service
        # binds them (it then exits with a one-line error): start again on fresh ones.
        for attempt in range(START_ATTEMPTS):
            try:
                self._start(cmd, env, extra_toml, log_level, start_timeout)
                return
            except ServiceError:
                refused = self.proc.poll() == EXIT_USER_ERROR
                self._terminate()
                if not refused or attempt == START_ATTEMPTS - 1:
                    raise ServiceError(
                        f"masker serve did not become ready:\n{self.log_tail(20)}"
                    ) from None

    def _start(
        self, cmd: list[str], env: dict[str, str], extra_toml: str, log_level: str, timeout: float
    ) -> None:
        self.sip_port = self.fixed_sip_port or free_port()
        if self.api_enabled:
            self.api_port = self.fixed_api_port or free_port(socket.SOCK_STREAM)
        self.media_min = free_udp_port_block(self.media_ports)
        self.media_max = self.media_min + self.media_ports - 1
        self.config_path.write_text(self._toml(log_level) + extra_toml)
        self.log_lines: list[LogLine] = []
        self.raw_stderr: list[str] = []
        self._log_ended = False
        self._cond = threading.Condition()
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, text=True, env=env, cwd=self.workdir,
        )  # fmt: skip
        threading.Thread(target=self._read_log, daemon=True).start()
        self._wait_ready(timeout)

    def _wait_ready(self, timeout: float) -> None:
        """Ready when the trunk side answers a SIP OPTIONS (whatever the log level)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise ServiceError("masker serve exited")
            if sip_options_ping(("127.0.0.1", self.sip_port)):
                return
        raise ServiceError("no answer to SIP OPTIONS")

    def _toml(self, log_level: str) -> str:
        w = self.workdir
        text = f"""
[sip]
listen_address = "127.0.0.1"
listen_port = {self.sip_port}

[pbx]
address = "127.0.0.1"
port = {self.pbx_port}

[media]
address = "127.0.0.1"
port_min = {self.media_min}
port_max = {self.media_max}

[service]
log_level = "{log_level}"
drain_grace_s = 2
api_enabled = {str(self.api_enabled).lower()}

[tokenizer]
vault_path = "{w / "vault.sqlite"}"
keys_dir = "{w / "keys"}"
dev_keys = true
"""
        if not self.api_enabled:
            return text
        return (
            text
            + f"""
[api]
host = "127.0.0.1"
port = {self.api_port}
keys = [{{ sub = "probe", role = "supervisor", key_env = "{API_KEY_ENV}" }}]
"""
        )

    def _read_log(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            with self._cond:
                self.raw_stderr.append(line)
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError:
                    obj = None
                if isinstance(obj, dict):
                    self.log_lines.append(obj)
                self._cond.notify_all()
        with self._cond:
            self._log_ended = True
            self._cond.notify_all()

    def wait_log(
        self,
        match: str | Callable[[LogLine], bool],
        timeout: float = 10.0,
        since: int = 0,
        **fields: Any,
    ) -> LogLine:
        """The first JSON log line from index `since` on that `match` accepts: a
        predicate, or an event name; keyword `fields` must equal the line's too."""
        line = first_match(
            self._cond,
            self.log_lines,
            log_matcher(match, fields),
            timeout,
            since,
            ended=lambda: self._log_ended,
        )
        if line is None:
            why = "masker serve exited" if self._log_ended else "timed out"
            tail = self.log_tail(15)
            raise ServiceError(f"no log line {match!r} {fields} ({why}); tail:\n{tail}")
        return line

    def log_tail(self, n: int) -> str:
        """The service's last `n` stderr lines."""
        with self._cond:
            return "".join(self.raw_stderr[-n:])

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    @property
    def uri_host(self) -> str:
        return f"127.0.0.1:{self.sip_port}"

    @property
    def api_url(self) -> str:
        if self.api_port is None:
            raise ServiceError("masker serve runs without the API")
        return f"http://127.0.0.1:{self.api_port}"

    def api_get(self, path: str) -> Any:
        """GET a JSON resource of the service API as the supervisor."""
        req = urllib.request.Request(
            self.api_url + path, headers={"Authorization": f"Bearer {self.api_key}"}
        )
        with urllib.request.urlopen(req, timeout=5) as resp:
            return json.load(resp)

    def diagnose(self, settle_s: float = 0.5) -> str:
        """Whether the service is alive, its threads' stacks (SIGUSR2) and its last log
        lines: what a failing test should show about the service."""
        if self.proc.poll() is not None:
            head = f"masker serve exited with status {self.proc.returncode}"
        else:
            head = "masker serve is running; its thread stacks follow the log"
            self.proc.send_signal(signal.SIGUSR2)
            time.sleep(settle_s)
        return f"{head}\n{self.log_tail(60)}"

    def _terminate(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def stop(self, timeout: float = 15.0) -> int:
        """SIGTERM (drain) and wait; kill if it does not stop in time. The exit status."""
        return self._terminate(timeout)

    def __enter__(self) -> ServiceProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
