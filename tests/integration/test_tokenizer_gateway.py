"""The HTTPS JSON adapter against a local PSP over real TLS on 127.0.0.1."""

import asyncio
import dataclasses

import pytest

from tests.support.cards import SCAN_CVV, SCAN_EXPIRY, SCAN_PAN, sd
from tests.support.psp_server import make_tls_material, running_psp
from tokenizer.gateway import ChargeRequest, HttpsJsonGateway


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_tls_material(tmp_path_factory.mktemp("psp-tls"))


@pytest.fixture(scope="module")
def other_ca(tmp_path_factory):
    return make_tls_material(tmp_path_factory.mktemp("other-tls"), "some other CA")


def request():
    return ChargeRequest(
        pan=sd(SCAN_PAN),
        expiry=sd(SCAN_EXPIRY),
        cvv=sd(SCAN_CVV),
        amount_minor=1250,
        currency="GBP",
        reference="order-42",
        token="tok_x",
    )


def charge(tls, behaviour="approve", ca_file=None, timeout_s=5.0):
    async def go():
        async with running_psp(tls, behaviour) as psp:
            gw = HttpsJsonGateway(psp.url, ca_file=ca_file or tls.ca_file, timeout_s=timeout_s)
            return await gw.charge(request()), psp

    return asyncio.run(go())


def test_approval_returns_the_psp_token_and_authorisation(tls):
    result, _ = charge(tls)
    assert (result.status, result.psp_token, result.authorisation) == (
        "approved",
        "psp_tok_1",
        "AUTH0001",
    )


def test_psp_receives_the_card_amount_and_reference(tls):
    _, psp = charge(tls)
    body = psp.requests[0]
    assert (body["pan"], body["expiry_month"], body["expiry_year"], body["cvv"]) == (
        SCAN_PAN,
        "08",
        "2039",
        SCAN_CVV,
    )
    assert (body["amount"], body["currency"], body["reference"]) == (1250, "GBP", "order-42")


def test_certificate_from_an_untrusted_ca_is_refused(tls, other_ca):
    result, psp = charge(tls, ca_file=other_ca.ca_file)
    assert result.reason == "tls_verification_failed" and result.retryable and not psp.requests


def test_system_trust_store_does_not_trust_the_test_ca(tls):
    async def go():
        async with running_psp(tls) as psp:
            return await HttpsJsonGateway(psp.url).charge(request()), psp

    result, psp = asyncio.run(go())
    assert result.reason == "tls_verification_failed" and not psp.requests


def test_plain_http_endpoint_is_refused():
    with pytest.raises(ValueError):
        HttpsJsonGateway("http://127.0.0.1:9/charge")


def test_timeout_is_a_retryable_failure(tls):
    result, _ = charge(tls, "slow:0.8", timeout_s=0.2)
    assert (result.status, result.reason, result.retryable) == ("failed", "timeout", True)


def test_4xx_is_a_retryable_failure(tls):
    result, _ = charge(tls, "status:400")
    assert (result.reason, result.http_status, result.retryable) == (
        "psp_rejected_request",
        400,
        True,
    )


def test_5xx_is_a_retryable_failure(tls):
    result, _ = charge(tls, "status:503")
    assert (result.reason, result.retryable) == ("psp_server_error", True)


def test_malformed_json_is_a_retryable_failure(tls):
    result, _ = charge(tls, "bad_json")
    assert (result.reason, result.retryable) == ("bad_response", True)


def test_json_that_is_not_an_answer_is_a_retryable_failure(tls):
    result, _ = charge(tls, "not_object")
    assert (result.reason, result.retryable) == ("bad_response", True)


def test_decline_is_final_not_retryable(tls):
    result, _ = charge(tls, "decline")
    assert (result.status, result.reason, result.retryable) == (
        "declined",
        "insufficient_funds",
        False,
    )


def test_connection_refused_is_a_retryable_failure(tls):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result = asyncio.run(
        HttpsJsonGateway(f"https://127.0.0.1:{port}/charge", ca_file=tls.ca_file).charge(request())
    )
    assert (result.reason, result.retryable) == ("connection_error", True)


def test_request_repr_holds_no_card_data():
    # A key without digits: a random hex key holds "947" by chance about once in 150.
    text = repr(dataclasses.replace(request(), idempotency_key="key-without-digits"))
    assert SCAN_PAN not in text and SCAN_EXPIRY not in text and SCAN_CVV not in text


def test_certificate_for_another_host_name_is_refused(tls):
    async def go():
        async with running_psp(tls) as psp:
            url = psp.url.replace("127.0.0.1", "localhost")
            return await HttpsJsonGateway(url, ca_file=tls.ca_file).charge(request()), psp

    result, psp = asyncio.run(go())
    assert result.retryable and result.reason in ("tls_verification_failed", "tls_error")
    assert not psp.requests


def test_psp_value_that_looks_like_a_card_is_dropped(tls):
    result, _ = charge(tls, "echo_card")
    assert result.ok and result.psp_token is None and result.authorisation == "AUTH-echo"


def redirect_charge(tls, code, target_tls):
    """The PSP answers `code` with a Location on a second server (https with the same CA,
    or plain http when `target_tls` is None); returns the result and both servers."""

    async def go():
        async with (
            running_psp(target_tls) as target,
            running_psp(tls, f"redirect:{code}:{target.url}") as psp,
        ):
            gw = HttpsJsonGateway(psp.url, ca_file=tls.ca_file)
            return await gw.charge(request()), psp, target

    return asyncio.run(go())


@pytest.mark.parametrize("code", [301, 302, 303, 307, 308])
def test_redirect_fails_the_handoff_and_the_card_is_not_re_posted(tls, code):
    result, psp, target = redirect_charge(tls, code, tls)
    assert (result.status, result.reason, result.http_status) == (
        "failed",
        "psp_redirect_refused",
        code,
    )
    assert len(psp.requests) == 1 and target.requests == []


def test_redirect_to_plain_http_is_not_followed(tls):
    result, _, target = redirect_charge(tls, 307, None)
    assert result.reason == "psp_redirect_refused" and target.requests == []


def test_request_carries_its_idempotency_key(tls):
    async def go():
        async with running_psp(tls) as psp:
            req = request()
            await HttpsJsonGateway(psp.url, ca_file=tls.ca_file).charge(req)
            return req, psp

    req, psp = asyncio.run(go())
    assert psp.headers[0]["Idempotency-Key"] == req.idempotency_key


def test_idempotency_key_is_not_made_of_the_token_and_reference():
    a, b = request(), request()
    assert a.idempotency_key != b.idempotency_key
    assert "tok_x" not in a.idempotency_key and "order-42" not in a.idempotency_key
