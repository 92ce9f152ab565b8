"""The NOTIFY payload that carries one feed event between nodes (pure).

A notice is `{"node", "call", "event"}` as compact JSON.  The event is the public
feed event (masker.api.views.public_event), so it holds no card data.  PostgreSQL
refuses a payload of 8000 bytes or more; an event that would not fit is sent as
`"event": null`, which tells the receivers to send their subscribers the call's
current state from the directory instead (nothing is silently lost).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

CHANNEL = "masker_feed"
#: PostgreSQL's limit is 8000 bytes (NAMEDATALEN-sized channel aside); keep a margin.
MAX_PAYLOAD_BYTES = 7900


@dataclass(frozen=True)
class Notice:
    node: str
    call_id: str
    event: dict[str, Any] | None  # None: "refresh from the directory"


def encode(node: str, call_id: str, event: Mapping[str, Any] | None) -> str:
    """The payload for `event` of `call_id` published by `node`, always under the limit."""
    text = json.dumps(
        {"node": node, "call": call_id, "event": event}, separators=(",", ":"), default=str
    )
    if len(text.encode()) <= MAX_PAYLOAD_BYTES:
        return text
    return json.dumps({"node": node, "call": call_id, "event": None}, separators=(",", ":"))


def decode(payload: str) -> Notice | None:
    """The notice in `payload`, or None when it is not one of ours."""
    try:
        body = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(body, dict):
        return None
    node, call_id, event = body.get("node"), body.get("call"), body.get("event")
    if not isinstance(node, str) or not isinstance(call_id, str) or not call_id:
        return None
    if event is not None and not (isinstance(event, dict) and isinstance(event.get("type"), str)):
        return None
    return Notice(node, call_id, event)
