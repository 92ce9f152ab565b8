"""Repeated RFC 4733 digits survive successive calls through one service.

A media slot (and its batch-masker row) is reused by the next call, and pjsua2's
default `dialDtmf` pacing sends the digits back to back: each of several calls
in a row must still hand the tokeniser exactly the keyed card, every repeated
"1" included.
"""

from __future__ import annotations

import time

import pytest

from masker.phones.probe_call import CapturePoller, describe_token_event
from tests.support.e2e import CARD_PAN, digest, vault_card_digests

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(180)]

CALLS = 3


def expiry() -> str:
    return f"11{(time.gmtime().tm_year + 2) % 100:02d}"


def keyed_card_once(rig) -> list[dict]:
    """One call: the whole card handed to pjsua2 at once (its default pacing)."""
    keys = f"{CARD_PAN}#{expiry()}#111#"
    with CapturePoller(
        rig.service.api_url, rig.service.api_key, time.time() - 0.5, every_s=0.1
    ) as p:
        c, a = rig.connect()
        rig.caller.send_dtmf(c, keys, "rfc4733")
        time.sleep(0.25 * len(keys) + 1.0)
        rig.hang_up(c, a)
    return p.events


def test_every_call_in_a_row_tokenises_a_card_of_repeated_rfc4733_digits(rig):
    for n in range(CALLS):
        events = keyed_card_once(rig)
        issued = [e for e in events if e.get("event") == "token"]
        assert len(issued) == 1, (n, [describe_token_event(e) for e in events])
        assert issued[0]["brand"] == "visa"
        vaulted = vault_card_digests(rig.service, issued[0]["token"])
        assert vaulted == (digest(CARD_PAN), digest(expiry())), n  # exactly the keyed card
