"""The media plane's command interface, as the SIP side and the service use it.

Two implementations: masker.media.engine.MediaEngine (the media thread inside the
service, `[media] workers = 0`) and masker.media.workers.MediaWorkers (media worker
processes behind the same commands).  Every method may be called from any thread.
"""

from __future__ import annotations

from typing import Protocol

from masker.media.call_media import CallMedia
from masker.wire.sdp import Negotiated


class MediaPlane(Protocol):
    @property
    def alive(self) -> bool:
        """Readiness: the media plane can carry calls."""
        ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def open_call(self, call_id: str) -> CallMedia:
        """Bind the call's four ports now (the SDP needs their numbers)."""
        ...

    def set_caller_sdp(self, call: CallMedia, neg: Negotiated) -> None: ...

    def set_agent_sdp(self, call: CallMedia, neg: Negotiated) -> None: ...

    def arm(self, call: CallMedia, armed: bool) -> None: ...

    def external_digit(self, call: CallMedia, digit: str, source: str) -> None: ...

    def lost_digits(self, call: CallMedia, count: int, source: str) -> None: ...

    def close_call(self, call: CallMedia) -> None: ...

    def snapshot(self) -> dict[str, int]: ...
