"""Spans of the caller's audio masked whatever they contain.

RFC 4733 events (and their guard samples) are masked by force: the receive path
places a span on the masker's input-sample index of the event's timestamp.  When
buffered audio later moves (samples shed or trimmed, padding put before it) such
a span would miss its tone, so everything from the masker's current input to the
end of the forced spans is masked as well.  Both go through here, which keeps
each call's `masked_until` (the end of its last forced span).
"""

from __future__ import annotations

from masker.media.call_media import CallMedia
from masker.media.maskbank import MaskBank


class ForcedSpans:
    """Forced masking of a call's input samples, on its slot of the mask bank."""

    def __init__(self, bank: MaskBank) -> None:
        self.bank = bank

    def force(self, call: CallMedia, start: int, end: int) -> None:
        """Mask input samples [start, end) of the call (a later end extends a span);
        the masker counts samples at the call's audio rate."""
        r = call.ratio
        self.bank.force_mask(call.slot, start * r, end * r)
        if end > call.masked_until:
            call.masked_until = end

    def audio_shifted(self, call: CallMedia, later: int) -> None:
        """Buffered audio moved (samples dropped, or `later` samples of padding put
        before it): a forced span placed on it before the move would now miss its
        tone, so everything from now to the end of the forced spans (plus the shift)
        is masked."""
        fed = call.inbound.fed
        if call.masked_until > fed:
            self.force(call, fed, call.masked_until + later)
