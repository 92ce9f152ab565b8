"""The payment side's detokenise API is separate: an agent's credential reaches neither it
through the desktop API nor the detokeniser itself."""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import pytest
from aiohttp import web

from tests.support.api import AGENT_KEY, KEYED_CARD, LoopThread, http, make_jwt, running_api
from tests.support.cards import dev_tokenizer
from tokenizer.detokenize import detokenize_app

PAYMENT_CREDENTIAL = "payment-side-credential-for-tests-5b1e"


@pytest.fixture
def detokeniser():
    """The tokeniser's detokenise app on its own port, and a token it can open."""
    with tempfile.TemporaryDirectory(prefix="masker-detok-") as tmp:
        folder = Path(tmp)
        tk = dev_tokenizer(
            folder,
            detokenize_credential_sha256=hashlib.sha256(PAYMENT_CREDENTIAL.encode()).hexdigest(),
        )
        session = tk.new_session(amount_minor=100, currency="GBP", reference="DT-1")
        for key in KEYED_CARD:
            session.digit(key)
        assert session.token
        loop = LoopThread()
        runner = web.AppRunner(detokenize_app(tk.detokenizer), access_log=None)
        loop.run(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run(site.start())
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/v1/detokenize"
        try:
            yield url, session.token
        finally:
            loop.run(runner.cleanup())
            loop.stop()
            session.close()
            tk.close()


@pytest.mark.parametrize("path", ["/v1/detokenize", "/api/detokenize", "/payment/detokenize"])
def test_desktop_api_has_no_detokenise_route(path):
    with running_api() as api:
        reply = http("POST", f"{api.url}{path}", make_jwt(), {"token": "tok_x"})
    assert reply.status in (404, 405) and "error" in reply.json()


@pytest.mark.parametrize("credential", ["jwt", "api-key"])
def test_agent_credential_is_refused_by_the_detokeniser(detokeniser, credential):
    url, token = detokeniser
    bearer = make_jwt("agent-1") if credential == "jwt" else AGENT_KEY
    reply = http("POST", url, bearer, {"token": token})
    assert reply.status == 401 and b"pan" not in reply.body


def test_supervisor_credential_is_refused_by_the_detokeniser(detokeniser):
    url, token = detokeniser
    assert http("POST", url, make_jwt("sup-1", "supervisor"), {"token": token}).status == 401


def test_payment_credential_opens_the_token(detokeniser):
    url, token = detokeniser
    reply = http("POST", url, PAYMENT_CREDENTIAL, {"token": token})
    assert reply.status == 200 and reply.json()["token"] == token
