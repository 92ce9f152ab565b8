"""Kamailio (deploy/kamailio) as a test process (`Kamailio`: the TLS edge here and the
cluster's dispatcher in tests/support/cluster.py), and scripted SIP endpoints over
TCP and TLS: a trunk that connects to the edge and a PBX the edge connects to.

`Edge` runs the repository's kamailio.cfg unchanged, on free loopback ports given as
--substdef parameters, in its own working directory (development certificates from
scripts/make-tls-certs.sh in ./var/tls there), in the foreground (-DD) with its log
on stderr kept for inspection; its tls.cfg is the repository's with the mutual TLS
profile on its own port, as scripts/run-edge.sh writes it.
"""

from __future__ import annotations

import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path

from masker.phones.service_process import free_port
from tests.support.paths import PROJECT_ROOT
from tests.support.sip_client import HOST, SipMessage, parse

KAMAILIO_CFG = PROJECT_ROOT / "deploy" / "kamailio" / "kamailio.cfg"
TLS_CFG = KAMAILIO_CFG.with_name("tls.cfg")
MTLS_PROFILE = "[server:127.0.0.1:5062]"  # tls.cfg's header for EDGE_ADDR:EDGE_MTLS_PORT
MAKE_CERTS = PROJECT_ROOT / "scripts" / "make-tls-certs.sh"


def make_certs(workdir: Path) -> Path:
    """Development CA and server certificate in workdir/var/tls (the script's layout)."""
    tls = workdir / "var" / "tls"
    subprocess.run([str(MAKE_CERTS), str(tls)], check=True, capture_output=True)
    return tls


def tls_config(workdir: Path, mtls_port: int) -> Path:
    """workdir/tls.cfg: the repository's, its mutual TLS profile bound to `mtls_port`
    (Kamailio picks a server profile by the local address and port)."""
    text = TLS_CFG.read_text()
    if MTLS_PROFILE not in text:
        raise RuntimeError(f"{TLS_CFG} has no {MTLS_PROFILE} profile")
    path = workdir / "tls.cfg"
    path.write_text(text.replace(MTLS_PROFILE, f"[server:{HOST}:{mtls_port}]"))
    return path


def server_context(tls_dir: Path) -> ssl.SSLContext:
    """A server context with the development server certificate (a TLS PBX)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    ctx.load_cert_chain(tls_dir / "server.pem", tls_dir / "server.key")
    return ctx


def kamailio_binary() -> str:
    """Debian's kamailio (often in /usr/sbin, outside a user's PATH)."""
    binary = shutil.which("kamailio") or shutil.which("kamailio", path="/usr/sbin:/sbin")
    if binary is None:
        raise RuntimeError("kamailio is not installed (make setup installs it)")
    return binary


class Kamailio:
    """kamailio on one of the repository's configs, its NAME parameters given as
    --substdef, in the foreground in `workdir`, its log (stderr) kept in `lines`;
    ready when `ready()` is true."""

    def __init__(
        self, cfg: Path, workdir: Path, params: dict[str, object], ready: Callable[[], bool]
    ) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        run = workdir / "run"
        run.mkdir(exist_ok=True)
        cmd = [kamailio_binary(), "-f", str(cfg), "-DD", "-E", "-n", "1", "-m", "64", "-M", "8"]
        cmd += ["-w", str(workdir), "-Y", str(run)]
        for name, value in params.items():
            cmd.append(f"--substdef=!{name}!{value}!")
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            text=True, errors="replace", cwd=workdir,
        )  # fmt: skip
        threading.Thread(target=self._read_log, daemon=True).start()
        self._wait_ready(ready, 10.0)

    def _read_log(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line)

    def _wait_ready(self, ready: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if ready():
                return
            time.sleep(0.05)
        self.stop()
        raise RuntimeError("kamailio did not start:\n" + self.log)

    @property
    def log(self) -> str:
        return "".join(self.lines)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def tcp_accepts(port: int) -> bool:
    try:
        socket.create_connection((HOST, port), timeout=0.2).close()
    except OSError:
        return False
    return True


class Edge(Kamailio):
    """kamailio with deploy/kamailio/kamailio.cfg between a trunk and `masker serve`."""

    def __init__(
        self,
        workdir: Path,
        masker_port: int,
        inner_port: int,
        pbx_port: int,
        pbx_transport: str = "tls",
    ) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.tls_dir = make_certs(workdir)
        self.ca = self.tls_dir / "ca.pem"
        self.client_cert = self.tls_dir / "client.pem", self.tls_dir / "client.key"
        self.tls_port = free_port(socket.SOCK_STREAM)
        self.mtls_port = free_port(socket.SOCK_STREAM)
        self.tcp_port = free_port(socket.SOCK_STREAM)
        self.inner_port = inner_port
        params: dict[str, object] = {
            "EDGE_ADDR": HOST,
            "EDGE_TLS_PORT": self.tls_port,
            "EDGE_MTLS_PORT": self.mtls_port,
            "EDGE_TCP_PORT": self.tcp_port,
            "TLS_CONFIG": tls_config(workdir, self.mtls_port),
            "INNER_ADDR": HOST,
            "INNER_PORT": inner_port,
            "MASKER_ADDR": HOST,
            "MASKER_PORT": masker_port,
            "PBX_HOST": HOST,
            "PBX_PORT": pbx_port,
            "PBX_TRANSPORT": pbx_transport,
        }
        super().__init__(KAMAILIO_CFG, workdir, params, self._listening)

    def _listening(self) -> bool:
        return tcp_accepts(self.tls_port) and tcp_accepts(self.mtls_port)

    def client_context(
        self, version: ssl.TLSVersion | None = None, cert: tuple[Path, Path] | None = None
    ) -> ssl.SSLContext:
        """A client context trusting the development CA; `version` pins one TLS version,
        `cert` (certificate, key) is presented to the edge (e.g. `client_cert`)."""
        ctx = ssl.create_default_context(cafile=str(self.ca))
        if cert is not None:
            ctx.load_cert_chain(*cert)
        if version is not None:
            if version < ssl.TLSVersion.TLSv1_2:
                ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let OpenSSL 3 offer it at all
            with warnings.catch_warnings():  # pinning an old version is the point here
                warnings.simplefilter("ignore", DeprecationWarning)
                ctx.minimum_version = ctx.maximum_version = version
        return ctx


class StreamEndpoint:
    """A scripted SIP endpoint on one TCP or TLS connection (RFC 3261 18.3 framing)."""

    def __init__(self, sock: socket.socket, transport: str, user: str) -> None:
        self.sock = sock
        self.transport = transport  # "TCP" | "TLS"
        self.user = user
        self.port = sock.getsockname()[1]
        self.buf = b""
        self.cseq = 1

    @classmethod
    def connect(
        cls, port: int, transport: str, user: str = "caller", ctx: ssl.SSLContext | None = None
    ) -> StreamEndpoint:
        sock = socket.create_connection((HOST, port), timeout=3)
        if transport == "TLS":
            assert ctx is not None
            sock = ctx.wrap_socket(sock, server_hostname="localhost")
        return cls(sock, transport, user)

    def close(self) -> None:
        self.sock.close()

    @property
    def tls_version(self) -> str | None:
        """The negotiated TLS version ("TLSv1.3"), None over TCP."""
        return self.sock.version() if isinstance(self.sock, ssl.SSLSocket) else None

    @property
    def contact(self) -> str:
        return f"<sip:{self.user}@{HOST}:{self.port};transport={self.transport.lower()}>"

    def send_raw(self, data: str) -> None:
        self.sock.sendall(data.encode())

    def recv(self, timeout: float = 3.0, skip_100: bool = True) -> SipMessage:
        deadline = time.monotonic() + timeout
        while True:
            msg = self._framed()
            if msg is not None:
                if skip_100 and msg.is_response and msg.code == 100:
                    continue
                return msg
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no SIP message")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65535)
            except TimeoutError:
                raise TimeoutError("no SIP message") from None
            if not data:
                raise ConnectionError("connection closed")
            self.buf += data

    def _framed(self) -> SipMessage | None:
        self.buf = self.buf.lstrip(b"\r\n")  # keep-alives
        head, sep, rest = self.buf.partition(b"\r\n\r\n")
        if not sep:
            return None
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() in (b"content-length", b"l"):
                length = int(value.strip())
        if len(rest) < length:
            return None
        self.buf = rest[length:]
        return parse(head + sep + rest[:length], self.sock.getpeername())

    def expect(self, want: int | str, timeout: float = 3.0) -> SipMessage:
        """The next message that is the wanted response code or request method."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self.recv(max(deadline - time.monotonic(), 0.01))
            if (isinstance(want, int) and msg.is_response and msg.code == want) or (
                isinstance(want, str) and not msg.is_response and msg.method == want
            ):
                return msg

    def request(
        self,
        method: str,
        uri: str,
        *,
        call_id: str,
        from_tag: str,
        to_tag: str | None = None,
        cseq: int | None = None,
        routes: list[str] | None = None,
        body: str = "",
        ctype: str = "application/sdp",
        from_hdr: str | None = None,
        to_hdr: str | None = None,
    ) -> str:
        """A request from this endpoint; `from_hdr`/`to_hdr` (name-addr without tag)
        replace the default From/To, e.g. for the callee of a dialog."""
        if cseq is None:
            cseq, self.cseq = self.cseq, self.cseq + 1
        branch = "z9hG4bK" + secrets.token_hex(8)
        default_from = f"<sip:{self.user}@{HOST}>"
        default_to = "<" + uri.split(";")[0] + ">"
        lines = [
            f"{method} {uri} SIP/2.0",
            f"Via: SIP/2.0/{self.transport} {HOST}:{self.port};branch={branch};rport",
            f"From: {from_hdr or default_from};tag={from_tag}",
            f"To: {to_hdr or default_to}" + (f";tag={to_tag}" if to_tag else ""),
            f"Call-ID: {call_id}",
            f"CSeq: {cseq} {method}",
            f"Contact: {self.contact}",
            "Max-Forwards: 70",
        ]
        lines += [f"Route: {r}" for r in routes or []]
        if body:
            lines.append(f"Content-Type: {ctype}")
        lines.append(f"Content-Length: {len(body.encode())}")
        return "\r\n".join(lines) + "\r\n\r\n" + body

    def reply(self, req: SipMessage, code: int, body: str = "", to_tag: str | None = None) -> None:
        """Answer a request that came in on this connection (Record-Route copied back)."""
        reasons = {180: "Ringing", 200: "OK", 486: "Busy Here"}
        to = req.header("To")
        if to_tag and ";tag=" not in to:
            to += f";tag={to_tag}"
        lines = [f"SIP/2.0 {code} {reasons.get(code, 'Status')}"]
        lines += [f"Via: {v}" for v in req.all("Via")]
        lines += [f"Record-Route: {r}" for r in req.all("Record-Route")]
        lines += [
            f"From: {req.header('From')}",
            f"To: {to}",
            f"Call-ID: {req.header('Call-ID')}",
            f"CSeq: {req.header('CSeq')}",
            f"Contact: {self.contact}",
        ]
        if body:
            lines.append("Content-Type: application/sdp")
        lines.append(f"Content-Length: {len(body.encode())}")
        self.send_raw("\r\n".join(lines) + "\r\n\r\n" + body)


class StreamServer:
    """A listening TCP or TLS socket for a scripted PBX; `accept` gives its endpoint."""

    def __init__(self, transport: str, ctx: ssl.SSLContext | None = None) -> None:
        self.transport = transport
        self.ctx = ctx
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((HOST, 0))
        self.listener.listen(8)
        self.port = self.listener.getsockname()[1]
        self.accepted: list[StreamEndpoint] = []

    def accept(self, timeout: float = 5.0) -> StreamEndpoint:
        self.listener.settimeout(timeout)
        sock, _ = self.listener.accept()
        if self.ctx is not None:
            sock = self.ctx.wrap_socket(sock, server_side=True)
        ep = StreamEndpoint(sock, self.transport, "pbx")
        self.accepted.append(ep)
        return ep

    def close(self) -> None:
        for ep in self.accepted:
            ep.close()
        self.listener.close()
