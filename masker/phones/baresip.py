"""Drive Debian's baresip headless as a second, independent SIP caller (interop tests).

baresip runs with a private config directory: G.711 by default (`codecs`
picks its codec modules, e.g. ("g722",) for G.722 only), the `aufile` module
as its microphone (a WAV we generate, at the codec's rate), `aubridge` as a
sound-card-free speaker, and `ctrl_tcp` for commands (netstring-framed JSON:
dial, sndcode, hangup).  Its `sndcode` sends RFC 4733 telephone-events.
`srtp=True` loads its `srtp` module and makes SDES-SRTP mandatory
(mediaenc=srtp-mand); `tls_ca` trusts that CA for SIP over TLS (dial a
`;transport=tls` URI).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from masker.phones.client import free_udp_port_block
from masker.phones.service_process import free_port

STARTUP_ATTEMPTS = 3
MODULE_DIRS = ("/usr/lib/baresip/modules", "/usr/lib/x86_64-linux-gnu/baresip/modules")


def baresip_available() -> bool:
    return shutil.which("baresip") is not None and any(Path(d).is_dir() for d in MODULE_DIRS)


class BaresipCaller:
    """One baresip process whose microphone plays `source_wav`."""

    def __init__(
        self,
        source_wav: str | Path,
        workdir: str | Path | None = None,
        codecs: tuple[str, ...] = ("g711",),
        srtp: bool = False,
        tls_ca: str | Path | None = None,
    ):
        self.dir = Path(workdir or tempfile.mkdtemp(prefix="baresip-"))
        self.dir.mkdir(parents=True, exist_ok=True)
        # baresip binds UDP, TCP and TLS listeners next to `sip_listen`, so a port we
        # found free for UDP can still be taken for TCP/TLS: start again on fresh
        # ports when it gives up binding.
        for attempt in range(STARTUP_ATTEMPTS):
            self.sip_port = free_port()
            self.ctrl_port = free_port(socket.SOCK_STREAM)
            rtp = free_udp_port_block(20)
            module_dir = next(d for d in MODULE_DIRS if Path(d).is_dir())
            (self.dir / "config").write_text(
                "\n".join([
                    "poll_method epoll",
                    f"sip_listen 127.0.0.1:{self.sip_port}",
                    # SDP must name the address RTP comes from (the masker accepts
                    # media only from there): loopback, not the host's default one
                    "net_interface 127.0.0.1",
                    f"rtp_ports {rtp}-{rtp + 19}",
                    "audio_player aubridge,nil",
                    f"audio_source aufile,{source_wav}",
                    "audio_alert aubridge,nil",
                    f"module_path {module_dir}",
                    *(f"module {c}.so" for c in codecs),
                    *(["module srtp.so"] if srtp else []),
                    *([f"sip_cafile {tls_ca}"] if tls_ca else []),
                    "module aufile.so",
                    "module aubridge.so",
                    "module_app account.so",
                    "module_app menu.so",
                    "module_app ctrl_tcp.so",
                    f"ctrl_tcp_listen 127.0.0.1:{self.ctrl_port}",
                    "",
                ])
            )  # fmt: skip
            media = ";mediaenc=srtp-mand" if srtp else ""
            (self.dir / "accounts").write_text(f"<sip:baresip@127.0.0.1>;regint=0{media}\n")
            self.log = open(self.dir / "baresip.log", "wb")  # noqa: SIM115 - closed in close()
            self.proc = subprocess.Popen(
                ["baresip", "-f", str(self.dir)],
                stdin=subprocess.DEVNULL, stdout=self.log, stderr=subprocess.STDOUT,
            )  # fmt: skip
            try:
                self.sock = self._connect()
                break
            except RuntimeError:
                if attempt == STARTUP_ATTEMPTS - 1:
                    raise
        self.events: list[dict] = []
        self._buf = b""

    def _connect(self, timeout: float = 10.0) -> socket.socket:
        deadline = time.monotonic() + timeout
        while True:
            try:
                return socket.create_connection(("127.0.0.1", self.ctrl_port), timeout=1)
            except OSError:
                if time.monotonic() > deadline or self.proc.poll() is not None:
                    self.close()
                    tail = (self.dir / "baresip.log").read_bytes()[-400:].decode(errors="replace")
                    raise RuntimeError(
                        f"baresip did not open its control port; its log ends: {tail!r}"
                    ) from None
                time.sleep(0.1)

    def command(self, name: str, params: str = "") -> None:
        data = json.dumps({"command": name, "params": params, "token": name}).encode()
        self.sock.sendall(str(len(data)).encode() + b":" + data + b",")

    def dial(self, uri: str) -> None:
        self.command("dial", uri)

    def send_digits(self, digits: str) -> None:
        """RFC 4733 telephone-events for `digits` (baresip's sndcode)."""
        self.command("sndcode", digits)

    def hangup(self) -> None:
        self.command("hangup")

    def read_events(self, wait: float = 0.2) -> list[dict]:
        """Events and replies received so far on the control connection."""
        self.sock.settimeout(wait)
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    break
                self._buf += chunk
        except OSError:
            pass
        while b":" in self._buf:
            size, _, rest = self._buf.partition(b":")
            if not size.isdigit() or len(rest) < int(size) + 1:
                break
            n = int(size)
            self.events.append(json.loads(rest[:n]))
            self._buf = rest[n + 1 :]
        return self.events

    def wait_event(self, kind: str, timeout: float = 10.0) -> dict:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for ev in self.read_events():
                if ev.get("type") == kind:
                    return ev
        raise RuntimeError(f"baresip: no {kind} event")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        with contextlib.suppress(AttributeError, OSError):
            self.sock.close()
        self.log.close()

    def __enter__(self) -> BaresipCaller:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
