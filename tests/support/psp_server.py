"""A local HTTPS server that plays the payment service provider in tests.

TLS material is generated per test with ``cryptography`` (a throw-away CA and a
server certificate for 127.0.0.1), the server binds port 0 on 127.0.0.1, and
its behaviour is chosen per test: approve, decline, an HTTP error status,
malformed JSON or a slow answer.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import ssl
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class TlsMaterial:
    ca_file: str
    cert_file: str
    key_file: str


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_tls_material(folder: Path, ca_name: str = "test PSP CA") -> TlsMaterial:
    """A CA and a 127.0.0.1 server certificate signed by it, as PEM files in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(_name(ca_name))
        .issuer_name(_name(ca_name))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("127.0.0.1"))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    ca_file, cert_file, key_file = folder / "ca.pem", folder / "server.pem", folder / "server.key"
    ca_file.write_bytes(ca_cert.public_bytes(pem))
    cert_file.write_bytes(cert.public_bytes(pem))
    key_file.write_bytes(
        key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return TlsMaterial(str(ca_file), str(cert_file), str(key_file))


@dataclass
class FakePsp:
    """Behaviour: "approve", "decline", "status:<code>", "bad_json", "not_object",
    "slow:<seconds>", "echo_card" or "redirect:<code>:<url>" (a 3xx to `url`).
    `headers` holds each request's headers, in step with `requests`."""

    behaviour: str = "approve"
    requests: list[dict] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    url: str = ""

    async def handle(self, request: web.Request) -> web.Response:
        self.requests.append(await request.json())
        self.headers.append(dict(request.headers))
        kind, _, arg = self.behaviour.partition(":")
        if kind == "redirect":
            code, _, location = arg.partition(":")
            return web.Response(status=int(code), headers={"Location": location})
        if kind == "slow":
            await asyncio.sleep(float(arg))
        if kind == "status":
            return web.json_response({"error": "nope"}, status=int(arg))
        if kind == "bad_json":
            return web.Response(text="{not json", content_type="application/json")
        if kind == "not_object":
            return web.json_response([1, 2, 3])
        if kind == "echo_card":  # a broken PSP that puts the card number in its token
            body = self.requests[-1]
            return web.json_response(
                {"status": "approved", "token": body["pan"], "authorisation": "AUTH-echo"}
            )
        if kind == "decline":
            return web.json_response({"status": "declined", "reason": "insufficient_funds"})
        n = len(self.requests)
        return web.json_response(
            {"status": "approved", "token": f"psp_tok_{n}", "authorisation": f"AUTH{n:04d}"}
        )


@asynccontextmanager
async def running_psp(tls: TlsMaterial | None, behaviour: str = "approve"):
    """Start a FakePsp on https://127.0.0.1:<free port>/charge for the block (plain
    http:// when `tls` is None: only ever a redirect target, the adapter refuses http)."""
    psp = FakePsp(behaviour)
    app = web.Application()
    app.router.add_post("/charge", psp.handle)
    ctx = None
    if tls is not None:
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(tls.cert_file, tls.key_file)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ctx)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    psp.url = f"{'https' if ctx else 'http'}://127.0.0.1:{port}/charge"
    try:
        yield psp
    finally:
        await runner.cleanup()


def body_text(psp: FakePsp) -> str:
    return json.dumps(psp.requests)
