"""Service identifiers survive log redaction: no random id ever looks like a card number."""

from __future__ import annotations

import secrets

from masker.calls import ids
from tokenizer.redact import redact_text


def test_a_log_safe_id_never_holds_twelve_digits_in_a_row(monkeypatch) -> None:
    draws = iter(["4111111111111111", "9a41111111111111", "deadbeefdeadbeef"])
    monkeypatch.setattr(secrets, "token_hex", lambda n: next(draws))
    assert ids.log_safe_hex(8) == "deadbeefdeadbeef"


def test_log_safe_ids_pass_the_redactor_unchanged() -> None:
    values = [ids.log_safe_hex(16) for _ in range(2000)]
    assert [v for v in values if redact_text(v) != v] == []
