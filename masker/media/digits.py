"""Where the caller's key presses leave the media plane: each press, whichever way it
came (in-band tone, RFC 4733 event, SIP INFO), is counted on its call and handed to
the digit sink (the registry's feed to the payment session) once.

In-band and RFC 4733 presses are deduplicated where they are found (the tick and
the receive path, in masker input-sample indices); a SIP INFO digit has no sample
position, so it is matched against the audio around "now" (INFO_WINDOW_MS).
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from masker.media.call_media import CallMedia
from masker.media.law import SAMPLES_PER_MS

log = structlog.get_logger()

#: A SIP INFO digit matches an in-band press of the same key within this many ms.
INFO_WINDOW_MS = 300

DigitSink = Callable[[str, str, str], object]  # (call_id, digit, source)
LostSink = Callable[[str, int, str], object]  # (call_id, presses lost, source)


class DigitReporter:
    """Counts and reports one call's presses to the sink (never raises)."""

    def __init__(self, on_digit: DigitSink | None, on_lost: LostSink | None = None) -> None:
        self.on_digit = on_digit
        self.on_lost = on_lost

    def lost(self, call: CallMedia, count: int, source: str) -> None:
        """Presses of the call that were dropped before they got here (SIP INFO over its
        rate limit): counted, and reported in order with the call's presses."""
        call.counters["digits_lost_" + source] += count
        if self.on_lost is not None and not call.closed:
            try:
                self.on_lost(call.call_id, count, source)
            except Exception:
                log.error("digit loss sink failed", call=call.call_id)

    def report(self, call: CallMedia, digit: str, source: str) -> None:
        call.counters["digits_" + source] += 1
        if self.on_digit is not None:
            try:
                self.on_digit(call.call_id, digit, source)
            except Exception:
                log.error("digit sink failed", call=call.call_id)

    def external(self, call: CallMedia, digit: str, source: str) -> None:
        """A digit that came by signalling (SIP INFO): reported unless the audio
        already carried the same press."""
        if call.closed:
            return
        now = call.inbound.fed + call.inbound.buffered
        window = SAMPLES_PER_MS * INFO_WINDOW_MS
        if call.dedupe.accept(digit, now - window, now + window, source):
            self.report(call, digit, source)
