"""RTP timeouts, for every call: a call whose caller should be sending (its SDP says
sendrecv or sendonly, to a real address) and has sent no RTP for `timeout_s` is
reported to `on_timeout` once (the SIP side ends it).  Every other call (the caller
on hold: a=inactive / a=recvonly / c=0.0.0.0 / port 0, or no SDP at all) gets the
longer `hold_timeout_s` (issue 13: such calls used to live for ever), measured from
its last packet or from the offer that put it on hold (an offer that keeps it on
hold does not restart it), and is reported to `on_hold_timeout`.  Checked every
TIMEOUT_CHECK_S on the monotonic clock, not on every tick: it is a loop over every
call, and timeouts are tens of seconds.
"""

from __future__ import annotations

from collections.abc import Callable

from masker.media.call_media import CallMedia
from masker.wire.sdp import Negotiated

#: How often the calls are checked for an RTP timeout.
TIMEOUT_CHECK_S = 0.5

TimeoutSink = Callable[[str], object]  # (call_id)


def expects_rtp(neg: Negotiated | None) -> bool:
    """The caller's SDP says it sends us media (not on hold, not inactive)."""
    return (
        neg is not None
        and neg.direction in ("sendrecv", "sendonly")
        and neg.address not in ("", "0.0.0.0", "::")
        and neg.port != 0
    )


class RtpTimeouts:
    """Finds the calls whose caller went quiet for too long (a limit of 0 s: never)."""

    def __init__(
        self,
        calls: dict[str, CallMedia],
        timeout_s: float,
        on_timeout: TimeoutSink | None,
        *,
        hold_timeout_s: float = 0.0,
        on_hold_timeout: TimeoutSink | None = None,
    ) -> None:
        self.calls = calls
        self.timeout_s = timeout_s
        self.on_timeout = on_timeout
        self.hold_timeout_s = hold_timeout_s
        self.on_hold_timeout = on_hold_timeout or on_timeout
        self._last_check = 0.0

    def check(self, now: float) -> None:
        if (
            self.timeout_s <= 0 and self.hold_timeout_s <= 0
        ) or now - self._last_check < TIMEOUT_CHECK_S:
            return
        self._last_check = now
        for call in list(self.calls.values()):
            if call.timed_out:
                continue
            sends = expects_rtp(call.caller.sdp)
            limit = self.timeout_s if sends else self.hold_timeout_s
            if limit > 0 and now - call.last_caller_packet > limit:
                call.timed_out = True
                sink = self.on_timeout if sends else self.on_hold_timeout
                if sink is not None:
                    sink(call.call_id)
