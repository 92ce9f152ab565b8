"""The media plane's command interface, as the SIP side and the service use it.

Two implementations: masker.media.engine.MediaEngine (the media thread inside the
service, `[media] workers = 0`) and masker.media.workers.MediaWorkers (media worker
processes behind the same commands).  Every method may be called from any thread.
Each has its own kind of call handle: the engine's is the call's whole media state
(masker.media.call_media.CallMedia), the workers' only its id and ports (the state
lives in the worker), so the service holds no media state it never reads.
"""

from __future__ import annotations

from typing import Protocol, TypeVar

from masker.wire.sdp import Negotiated


class MediaCall(Protocol):
    """What the SIP side reads of a call's media: the ports its SDP names."""

    @property
    def call_id(self) -> str: ...

    @property
    def caller_port(self) -> int: ...

    @property
    def agent_port(self) -> int: ...


CallT = TypeVar("CallT", bound=MediaCall)


class MediaPlane(Protocol[CallT]):
    @property
    def alive(self) -> bool:
        """Readiness: the media plane can carry calls."""
        ...

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def open_call(self, call_id: str) -> CallT:
        """Bind the call's four ports now (the SDP needs their numbers)."""
        ...

    def set_caller_sdp(self, call: CallT, neg: Negotiated) -> None: ...

    def set_agent_sdp(self, call: CallT, neg: Negotiated) -> None: ...

    def arm(self, call: CallT, armed: bool) -> None: ...

    def external_digit(self, call: CallT, digit: str, source: str) -> None: ...

    def lost_digits(self, call: CallT, count: int, source: str) -> None: ...

    def close_call(self, call: CallT) -> None: ...

    def snapshot(self) -> dict[str, int]: ...
