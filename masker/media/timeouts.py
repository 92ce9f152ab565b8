"""RTP timeout: a call whose caller should be sending (its SDP says sendrecv or
sendonly, to a real address) and has sent no RTP for `timeout_s` is reported to
`on_timeout` once (the SIP side ends it).  Checked every TIMEOUT_CHECK_S, not on
every tick: it is a loop over every call, and timeouts are tens of seconds.
"""

from __future__ import annotations

from collections.abc import Callable

from masker.media.call import CallMedia

#: How often the calls are checked for an RTP timeout.
TIMEOUT_CHECK_S = 0.5

TimeoutSink = Callable[[str], object]  # (call_id)


class RtpTimeouts:
    """Finds the calls whose caller went quiet for too long (0 s: never)."""

    def __init__(self, calls: dict[str, CallMedia], timeout_s: float,
                 on_timeout: TimeoutSink | None) -> None:
        self.calls = calls
        self.timeout_s = timeout_s
        self.on_timeout = on_timeout
        self._last_check = 0.0

    def check(self, now: float) -> None:
        if self.timeout_s <= 0 or now - self._last_check < TIMEOUT_CHECK_S:
            return
        self._last_check = now
        for call in list(self.calls.values()):
            neg = call.caller.sdp
            sends = neg is not None and neg.direction in ("sendrecv", "sendonly") and \
                neg.address not in ("0.0.0.0", "::")
            if sends and not call.timed_out and now - call.last_caller_packet > self.timeout_s:
                call.timed_out = True
                if self.on_timeout is not None:
                    self.on_timeout(call.call_id)
