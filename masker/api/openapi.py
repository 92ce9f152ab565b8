"""The published OpenAPI 3 document of the agent-desktop API (hand-maintained).

Kept next to the handlers and checked against every response by the
schemathesis test, so it cannot drift from what the server does.
"""

from __future__ import annotations

from typing import Any

from masker.api.requests import AMOUNT, CURRENCY, FIELD_SETS, FIELDS, REFERENCE

CALL_ID = {"name": "call_id", "in": "path", "required": True, "schema": {"type": "string"}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _errors(*codes: int) -> dict[str, Any]:
    text = {
        400: "Malformed JSON or invalid fields",
        401: "Missing or invalid credential",
        403: "The role may not do this (a `metrics` credential may read /metrics only)",
        404: "Unknown call (or not bound to this agent)",
        409: "Call ended, capture already running or collecting, no capture running, "
        "nothing to retry, or the call is always masked",
        413: "Body too large",
        503: "In a cluster: the node carrying the call did not answer (`node_unavailable`)",
        429: "Too many failed authentications (of this credential or from this address), or "
        "too many open feeds (of this credential or from this address)",
    }
    return {str(c): _json(_ref("Error"), text[c]) for c in codes}


AUTHED = (401, 403, 429)

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "additionalProperties": False,
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    },
    "Capture": {
        "type": "object",
        "nullable": True,
        "additionalProperties": True,
        "description": "Public (masked) capture status from the tokeniser: fields, "
        "entered counts, masked display, brand, validity, token, hand-off result.",
    },
    "Call": {
        "type": "object",
        "required": ["id", "agent", "state", "capture"],
        "properties": {
            "id": {"type": "string"},
            "agent": {"type": "string", "nullable": True},
            "state": {"type": "string"},
            "caller": {"type": "string", "nullable": True},
            "started": {"type": "number", "nullable": True},
            "ended": {"type": "number", "nullable": True},
            "end_reason": {"type": "string", "nullable": True},
            "policy": {
                "type": "string",
                "nullable": True,
                "enum": ["always", "capture", None],
                "description": "Masking policy: `always` masks the whole call; "
                "`capture` masks from a capture's start until the agent ends the "
                "payment phase.",
            },
            "armed": {
                "type": "boolean",
                "nullable": True,
                "description": "The caller's keypad is masked towards the agent. Always "
                "true under the `always` policy; under `capture` it is armed by a "
                "capture and stays armed until the payment phase is ended.",
            },
            "capture": _ref("Capture"),
        },
    },
    "CallList": {
        "type": "object",
        "required": ["calls"],
        "properties": {"calls": {"type": "array", "items": _ref("Call")}},
    },
    "CaptureEnvelope": {
        "type": "object",
        "required": ["call_id", "capture"],
        "properties": {"call_id": {"type": "string"}, "capture": _ref("Capture")},
    },
    "CaptureRequest": {
        "type": "object",
        "required": ["amount", "currency", "reference"],
        "additionalProperties": False,
        "properties": {
            "amount": {"type": "string", "pattern": AMOUNT.pattern, "example": "12.50"},
            "currency": {"type": "string", "pattern": CURRENCY.pattern, "example": "GBP"},
            "reference": {"type": "string", "pattern": REFERENCE.pattern, "example": "INV-1001"},
            "fields": {
                "type": "array",
                "items": {"type": "string", "enum": list(FIELDS)},
                "enum": [list(f) for f in FIELD_SETS],
                "default": list(FIELD_SETS[0]),
                "description": "Fields the caller keys, in order (card number and expiry "
                "always; CVV and postcode optional).",
            },
        },
    },
    "RestartRequest": {
        "type": "object",
        "required": ["field"],
        "additionalProperties": False,
        "properties": {"field": {"type": "string", "enum": list(FIELDS)}},
    },
    "Health": {
        "type": "object",
        "required": ["status"],
        "properties": {
            "status": {"type": "string", "enum": ["ok", "ready", "not_ready"]},
            "checks": {"type": "object", "additionalProperties": {"type": "boolean"}},
        },
    },
}

FEED_TEXT = (
    "Live feed of one call. WebSocket: connect, then authenticate either with an "
    "`Authorization: Bearer` header on the upgrade or by sending "
    '`{"type": "auth", "token": "..."}` as the first message. The server first sends '
    '`{"type": "state", "call": Call}`, then `progress`, `token`, `handoff`, `capture`, '
    "`masking` (`armed` true/false) and `call` events (masked data only). The auth message "
    "must arrive within `ws_auth_timeout_s`; feeds are capped per credential and per client "
    "address (429 before the upgrade, close code 4429 after it). A feed opened with a JWT "
    "is closed at the token's `exp` with close code 4001 (`token_expired`); 4401, 4403 and "
    "4404 are the 401, 403 and 404 of the REST routes."
)


def _paths() -> dict[str, Any]:
    call = {"parameters": [CALL_ID]}
    return {
        "/api/calls": {
            "get": {
                "summary": "Calls bound to the authenticated agent (all calls for a supervisor)",
                "operationId": "listCalls",
                "security": [{"bearer": []}],
                "responses": {"200": _json(_ref("CallList"), "The calls"), **_errors(*AUTHED)},
            }
        },
        "/api/calls/{call_id}": {
            **call,
            "get": {
                "summary": "One call's state",
                "operationId": "getCall",
                "security": [{"bearer": []}],
                "responses": {"200": _json(_ref("Call"), "The call"), **_errors(*AUTHED, 404)},
            },
        },
        "/api/calls/{call_id}/capture": {
            **call,
            "get": {
                "summary": "The call's capture status",
                "operationId": "getCapture",
                "security": [{"bearer": []}],
                "responses": {
                    "200": _json(_ref("CaptureEnvelope"), "Capture status (null if none)"),
                    **_errors(*AUTHED, 404),
                },
            },
            "post": {
                "summary": "Start taking a payment: the call switches to capture mode",
                "operationId": "startCapture",
                "security": [{"bearer": []}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("CaptureRequest")}},
                },
                "responses": {
                    "201": _json(_ref("CaptureEnvelope"), "Capture started"),
                    **_errors(400, *AUTHED, 403, 404, 409, 413, 503),
                },
            },
            "delete": {
                "summary": "Cancel the running capture",
                "operationId": "cancelCapture",
                "security": [{"bearer": []}],
                "responses": {
                    "200": _json(_ref("CaptureEnvelope"), "Capture cancelled"),
                    **_errors(*AUTHED, 403, 404, 409, 503),
                },
            },
        },
        "/api/calls/{call_id}/capture/restart": {
            **call,
            "post": {
                "summary": "Clear one field so the caller keys it again",
                "operationId": "restartField",
                "security": [{"bearer": []}],
                "requestBody": {
                    "required": True,
                    "content": {"application/json": {"schema": _ref("RestartRequest")}},
                },
                "responses": {
                    "200": _json(_ref("CaptureEnvelope"), "Field restarted"),
                    **_errors(400, *AUTHED, 403, 404, 409, 413, 503),
                },
            },
        },
        "/api/calls/{call_id}/capture/retry": {
            **call,
            "post": {
                "summary": "Hand the held card to the payment gateway again after a retryable "
                "failure (the card is held until the hold timeout)",
                "operationId": "retryHandoff",
                "security": [{"bearer": []}],
                "responses": {
                    "202": _json(
                        _ref("CaptureEnvelope"), "Retry started; the feed gets the `handoff` result"
                    ),
                    **_errors(*AUTHED, 403, 404, 409, 503),
                },
            },
        },
        "/api/calls/{call_id}/payment/end": {
            **call,
            "post": {
                "summary": "End the payment phase: a `capture`-policy call is disarmed (the "
                "caller's keypad is heard again) until the next capture starts",
                "description": "Masking never stops on its own: a cancelled, failed, timed-out "
                "or expired capture leaves the call armed. Only the call's agent may end the "
                "payment phase (audited in the log); refused (409) while a capture is collecting "
                "digits and for calls under the `always` policy.",
                "operationId": "endPaymentPhase",
                "security": [{"bearer": []}],
                "responses": {
                    "200": _json(_ref("Call"), "Payment phase ended; `armed` is false"),
                    **_errors(*AUTHED, 403, 404, 409, 503),
                },
            },
        },
        "/api/calls/{call_id}/feed": {
            **call,
            "get": {
                "summary": "Live feed (WebSocket)",
                "description": FEED_TEXT,
                "operationId": "callFeed",
                "responses": {
                    "101": {"description": "Switching to the WebSocket protocol"},
                    **_errors(400, *AUTHED, 404),
                },
            },
        },
        "/api/calls/{call_id}/events": {
            **call,
            "get": {
                "summary": "Live feed as Server-Sent Events (fallback for the WebSocket)",
                "description": "The same events as the WebSocket feed, one JSON object per "
                "`data:` line; authenticate with the Authorization header.",
                "operationId": "callEvents",
                "security": [{"bearer": []}],
                "responses": {
                    "200": {
                        "description": "Event stream",
                        "content": {"text/event-stream": {"schema": {"type": "string"}}},
                    },
                    **_errors(*AUTHED, 404),
                },
            },
        },
        "/metrics": {
            "get": {
                "summary": "Prometheus metrics",
                "operationId": "metrics",
                "description": "Needs a supervisor or `metrics` credential (the counters show "
                "live how many keys callers press), unless `[api] metrics_public = true`.",
                "security": [{"bearer": []}],
                "responses": {
                    "200": {
                        "description": "Metrics in the text exposition format",
                        "content": {"text/plain": {"schema": {"type": "string"}}},
                    },
                    **_errors(*AUTHED),
                },
            }
        },
        "/healthz": {
            "get": {
                "summary": "The process is up",
                "operationId": "healthz",
                "responses": {"200": _json(_ref("Health"), "Up")},
            }
        },
        "/readyz": {
            "get": {
                "summary": "SIP and media listening, vault reachable",
                "operationId": "readyz",
                "responses": {
                    "200": _json(_ref("Health"), "Ready"),
                    "503": _json(_ref("Health"), "Not ready; `checks` says which check failed"),
                },
            }
        },
        "/desktop": {
            "get": {
                "summary": "The agent payment panel (HTML)",
                "operationId": "desktop",
                "responses": {
                    "200": {
                        "description": "The page",
                        "content": {"text/html": {"schema": {"type": "string"}}},
                    }
                },
            }
        },
    }


def openapi_document() -> dict[str, Any]:
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "DTMF payment masker: agent desktop API",
            "version": "1.0.0",
            "description": "Control a call's payment capture and follow it live. Only "
            "masked card data ever leaves this API.",
        },
        "paths": _paths(),
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {
                "bearer": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "HS256 JWT (claims sub, role, aud, iat, exp; lifetime "
                    "exp - iat at most `jwt_max_lifetime_s`) or a configured API key",
                }
            },
        },
    }
