"""Card-data capture, validation, tokens, vault and gateway hand-off.

Knows card data and nothing of audio or SIP. Clear digits exist only in
``SensitiveDigits`` buffers (wiped after use); everything this package hands
to callers outside the payment side is masked.

Facade (what ``masker`` uses)::

    from tokenizer import TokenizerConfig, build_tokenizer, HttpsJsonGateway

    tk = build_tokenizer(TokenizerConfig(vault_path=..., keystore_path=..., kek_file=...))
    # dev only: build_tokenizer(config, dev_dir="var/dev-keys") makes throw-away keys
    session = tk.new_session(amount_minor=1250, currency="GBP", reference="order-42")
    unsubscribe = session.subscribe(send_to_agent_desktop)   # public JSON-safe dicts
    session.digit("4")          # one key at a time, from any source: 0-9, * clears, # ends
    session.poll()              # periodically: field/session/hold timeouts
    session.restart_field("pan")   # agent action
    session.status()            # public, masked snapshot
    result = await session.hand_off(HttpsJsonGateway("https://psp.example/charge"))
    session.cancel() / session.close()   # wipe everything still held
    session.release_card()      # token issued, no hand-off follows: wipe the card now
    tk.purge_expired()          # drop vault records older than config.ttl_s (default 24 h)

Events (all carry ``"session"``):
- ``{"event": "field_started", "field", "kind", "index", "attempt", "restarted"}``
- ``{"event": "progress", "field", "kind", "entered", "display", "complete", "valid",
  "reason", "attempt", ["brand", "luhn"] (PAN), ["ended_by"], ["cleared"]}`` e.g.
  ``{"field": "pan", "entered": 16, "display": "•••• •••• •••• 1111", "brand": "visa",
  "luhn": true, "complete": true, ...}``. Expiry and CVV show bullets only.
- ``{"event": "complete", "brand"}`` then ``{"event": "token", "token", "kind", "brand",
  "display", "reused"}`` (or ``{"event": "error", "reason": "token_issue_failed"}``)
- ``{"event": "handoff", "ok", "status": "approved"|"declined"|"failed", "retryable",
  "reason", "authorisation", "token"}``; after a retryable failure the state is
  ``handoff_failed`` and ``hand_off`` may be called again with the card still held
  (same Idempotency-Key: one key per issued token, i.e. per payment attempt). The PSP
  adapter never follows a redirect (reason ``psp_redirect_refused``). A session
  without an amount wipes its card as soon as its token is issued.
- ``{"event": "cancelled"|"timed_out"|"failed"|"expired"}``

Session states: collecting, complete, tokenised, token_failed, handing_off,
handoff_failed, handed_off, declined, cancelled, timed_out, failed, expired.

Payment side only: ``tokenizer.detokenize`` (``Detokenizer`` and its aiohttp app,
with its own credential). Logging: ``tokenizer.redact.redact_card_data`` is the
structlog processor ``masker.runtime.logs.configure_logging`` installs.

Modules: luhn, brands, fields, display, capture (per-call state machine), ff1
(NIST SP 800-38G), tokens (vault/FPE tokens), keys (KEK, data keys, rotation),
vault (storage interface + SQLite), postgres_vault (the vault shared by
nodes), migrations (versioned vault schemas), token_service, gateway, detokenize,
sensitive, redact, clock, config, session, stack, lifetime (weak register of
captures: how many digits are still held, by count only; for tests).
"""

from tokenizer.config import TokenizerConfig
from tokenizer.gateway import GatewayResult, HttpsJsonGateway, PaymentGateway
from tokenizer.sensitive import SensitiveDigits
from tokenizer.session import HandOffNotReady, PaymentSession
from tokenizer.stack import Tokenizer, build_tokenizer

__all__ = [
    "GatewayResult",
    "HandOffNotReady",
    "HttpsJsonGateway",
    "PaymentGateway",
    "PaymentSession",
    "SensitiveDigits",
    "Tokenizer",
    "TokenizerConfig",
    "build_tokenizer",
]
