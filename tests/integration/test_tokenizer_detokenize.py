"""Payment-side detokenisation: its own credential, its own HTTP app."""

import asyncio

import pytest
from aiohttp import ClientSession, web

from tests.support.cards import VISA, make_vault, sd
from tokenizer.clock import ManualClock
from tokenizer.detokenize import DetokenizeDenied, Detokenizer, credential_digest, detokenize_app

CREDENTIAL = "payment-side-secret"


@pytest.fixture
def detok(tmp_path):
    clock = ManualClock()
    vault = make_vault(tmp_path)
    vault.store_card(
        token="tok_a",
        scope="m1",
        fingerprint="fp",
        pan=sd(VISA),
        expiry=sd("0839"),
        brand="visa",
        now=clock.now().timestamp(),
    )
    yield Detokenizer(vault, credential_digest(CREDENTIAL), clock)
    vault.store.close()


def test_right_credential_opens_the_card(detok):
    assert detok.detokenize("tok_a", CREDENTIAL).pan.reveal() == VISA


def test_wrong_credential_is_denied(detok):
    with pytest.raises(DetokenizeDenied):
        detok.detokenize("tok_a", "agent-desktop-token")


def test_repr_hides_the_credential(detok):
    assert CREDENTIAL not in repr(detok) and credential_digest(CREDENTIAL) not in repr(detok)


def call_app(detok, body, credential):
    async def go():
        runner = web.AppRunner(detokenize_app(detok))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        try:
            async with (
                ClientSession() as http,
                http.post(
                    f"http://127.0.0.1:{port}/v1/detokenize",
                    json=body,
                    headers={"Authorization": f"Bearer {credential}"},
                ) as resp,
            ):
                return resp.status, await resp.json(), resp.headers.get("Cache-Control")
        finally:
            await runner.cleanup()

    return asyncio.run(go())


def test_http_api_returns_the_card_to_the_payment_side(detok):
    status, body, cache = call_app(detok, {"token": "tok_a"}, CREDENTIAL)
    assert (status, body["pan"], body["expiry_month"], cache) == (200, VISA, "08", "no-store")


def test_http_api_denies_a_wrong_credential(detok):
    status, body, _ = call_app(detok, {"token": "tok_a"}, "nope")
    assert status == 401 and VISA not in str(body)


def test_http_api_unknown_token_is_not_found(detok):
    assert call_app(detok, {"token": "tok_zz"}, CREDENTIAL)[0] == 404


def test_http_api_malformed_request_is_bad_request(detok):
    assert call_app(detok, {"tok": 1}, CREDENTIAL)[0] == 400
