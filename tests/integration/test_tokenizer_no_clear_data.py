"""No card data in clear anywhere: logs, stdout/stderr, events, exceptions, repr(), files.

One full run per token kind: keyed capture with a wrong PAN and a clear key,
token, PSP failures (5xx, bad JSON, timeout), a retry that is approved,
payment-side detokenisation with a wrong and a right credential, a purge.
Everything observable is then scanned for the PAN (plain, spaced, dashed),
the expiry and the CVV.
"""

import asyncio
import io
import json
import logging
import re
from pathlib import Path

import pytest
import structlog

from masker.runtime.logs import configure_logging
from tests.support.cards import SCAN_CVV, SCAN_EXPIRY, SCAN_PAN
from tests.support.psp_server import make_tls_material, running_psp
from tokenizer import HandOffNotReady, HttpsJsonGateway, TokenizerConfig, build_tokenizer
from tokenizer.clock import ManualClock
from tokenizer.detokenize import DetokenizeDenied, Detokenizer, credential_digest
from tokenizer.sensitive import SensitiveDigits
from tokenizer.vault import VaultError

CREDENTIAL = "payment-side-credential"


def needles() -> list[re.Pattern]:
    spaced = " ".join(SCAN_PAN[i : i + 4] for i in range(0, 16, 4))
    mm, yy = SCAN_EXPIRY[:2], SCAN_EXPIRY[2:]
    return [
        re.compile(re.escape(SCAN_PAN)),
        re.compile(re.escape(spaced)),
        re.compile(re.escape(spaced.replace(" ", "-"))),
        re.compile(rf"(?<![0-9]){SCAN_EXPIRY}(?![0-9])"),
        re.compile(rf"(?<![0-9]){mm}/{yy}(?![0-9])"),
        re.compile(rf"(?<![0-9]){mm}/20{yy}"),
        re.compile(rf"(?<![0-9]){SCAN_CVV}(?![0-9])"),
    ]


def leaks(text: str) -> list[str]:
    return [p.pattern for p in needles() if p.search(text)]


def test_scan_finds_each_form_of_the_card_data():
    planted = f"{SCAN_PAN} | 4000 0566 5566 5556 | 08/39 | cvv={SCAN_CVV}"
    assert len(leaks(planted)) == 4


@pytest.fixture(scope="module")
def tls(tmp_path_factory):
    return make_tls_material(tmp_path_factory.mktemp("psp-tls"))


@pytest.fixture
def log_stream():
    stream = io.StringIO()
    configure_logging(json=True, level="debug", stream=stream)
    yield stream
    for h in list(logging.getLogger().handlers):
        if getattr(h, "_masker_handler", False):
            logging.getLogger().removeHandler(h)
    structlog.reset_defaults()


def full_run(tmp_path: Path, tls, kind: str) -> dict:
    clock = ManualClock()
    cfg = TokenizerConfig(
        vault_path=str(tmp_path / "vault.sqlite3"),
        keystore_path=str(tmp_path / "keys.json"),
        kek_env=None,
        token_kind=kind,
        detokenize_credential_sha256=credential_digest(CREDENTIAL),
    )
    tk = build_tokenizer(cfg, dev_dir=tmp_path / "dev", clock=clock)
    events: list[dict] = []
    errors: list[BaseException] = []
    objects: list[object] = [tk, tk.keyring, tk.store, tk.vault, tk.tokens, tk.detokenizer]
    session = tk.new_session(amount_minor=1250, currency="GBP", reference="order-42")
    session.subscribe(events.append)
    objects += [session, session.capture]

    wrong = SCAN_PAN[:-1] + str((int(SCAN_PAN[-1]) + 1) % 10)
    for ch in wrong + "#" + SCAN_PAN[:5] + "*" + SCAN_PAN + "#" + SCAN_EXPIRY + SCAN_CVV:
        session.digit(ch)
    objects += [session.capture.value("pan"), session.capture.value("cvv"), session._request()]
    try:
        asyncio.run(
            tk.new_session(amount_minor=1, currency="GBP", reference="x").hand_off(
                HttpsJsonGateway("https://127.0.0.1:9/")
            )
        )
    except HandOffNotReady as exc:
        errors.append(exc)

    async def hand_offs():
        results = []
        for behaviour, timeout in (
            ("status:500", 5.0),
            ("bad_json", 5.0),
            ("slow:0.6", 0.2),
            ("approve", 5.0),
        ):
            async with running_psp(tls, behaviour) as psp:
                gw = HttpsJsonGateway(psp.url, ca_file=tls.ca_file, timeout_s=timeout)
                objects.append(gw)
                results.append(await session.hand_off(gw))
        return results

    results = asyncio.run(hand_offs())
    assert [r["status"] for r in results] == ["failed", "failed", "failed", "approved"]

    detok: Detokenizer = tk.detokenizer
    try:
        detok.detokenize(session.token, "agent-credential")
    except DetokenizeDenied as exc:
        errors.append(exc)
    card = detok.detokenize(session.token, CREDENTIAL)
    assert card.pan.reveal() == SCAN_PAN  # the payment side does get the card
    objects.append(card)
    card.wipe()
    try:
        tk.vault.open("tok_missing", clock.now().timestamp())
    except VaultError as exc:
        errors.append(exc)
    try:
        SensitiveDigits(SCAN_PAN + "x")
    except ValueError as exc:
        errors.append(exc)
    objects.append(tk.store.get(session.token))
    clock.advance(cfg.ttl_s + 1)
    assert tk.purge_expired() == 1
    status = session.status()
    tk.close()
    return {"events": events, "errors": errors, "objects": objects, "status": status}


@pytest.mark.parametrize("kind", ["vault", "fpe"])
def test_full_run_leaves_no_card_data_anywhere(tmp_path, tls, log_stream, capfd, kind):
    run = full_run(tmp_path, tls, kind)
    out, err = capfd.readouterr()
    logs = log_stream.getvalue()
    assert "token_issued" in logs and "psp_charge_result" in logs  # the scan is not vacuous
    assert leaks(logs) == [] and leaks(out) == [] and leaks(err) == []
    assert leaks(json.dumps(run["events"], ensure_ascii=False)) == []
    assert leaks(json.dumps(run["status"], ensure_ascii=False)) == []
    assert len(run["errors"]) == 4
    assert all(leaks(str(e)) == [] and leaks(repr(e)) == [] for e in run["errors"])
    assert [leaks(repr(o)) for o in run["objects"]] == [[] for _ in run["objects"]]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name.startswith("vault.sqlite3") for p in files)
    for path in files:
        text = path.read_bytes().decode("latin-1")
        assert leaks(text) == [], path.name


def test_vault_file_holds_no_card_data_before_purge(tmp_path, tls):
    clock = ManualClock()
    cfg = TokenizerConfig(
        vault_path=str(tmp_path / "vault.sqlite3"),
        keystore_path=str(tmp_path / "keys.json"),
        kek_env=None,
    )
    tk = build_tokenizer(cfg, dev_dir=tmp_path / "dev", clock=clock)
    session = tk.new_session(amount_minor=1, currency="GBP", reference="r")
    for ch in SCAN_PAN + "#" + SCAN_EXPIRY + SCAN_CVV:
        session.digit(ch)
    assert session.state == "tokenised"
    for path in tmp_path.glob("vault.sqlite3*"):  # main file, -wal and -shm while open
        assert leaks(path.read_bytes().decode("latin-1")) == [], path.name
    tk.close()
