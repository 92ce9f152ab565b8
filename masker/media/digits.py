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

from masker.media.call import CallMedia

log = structlog.get_logger()

#: A SIP INFO digit matches an in-band press of the same key within this many ms.
INFO_WINDOW_MS = 300

DigitSink = Callable[[str, str, str], object]  # (call_id, digit, source)


class DigitReporter:
    """Counts and reports one call's presses to the sink (never raises)."""

    def __init__(self, on_digit: DigitSink | None) -> None:
        self.on_digit = on_digit

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
        window = 8 * INFO_WINDOW_MS
        if call.dedupe.accept(digit, now - window, now + window, source):
            self.report(call, digit, source)
