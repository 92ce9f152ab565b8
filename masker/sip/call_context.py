"""What every call controller shares: config, sippy's global config, the media
engine, the registry and the table of live calls."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from masker.calls.registry import Registry
from masker.media.plane import MediaPlane
from masker.runtime.service_config import Config


@dataclass
class SipContext:
    config: Config
    global_config: dict[str, Any]
    engine: MediaPlane[Any]
    registry: Registry
    calls: dict[str, Any] = field(default_factory=dict)
    draining: bool = False
    on_call_ended: Callable[[], None] | None = None

    def active_calls(self) -> int:
        return len(self.calls)

    def call_ended(self) -> None:
        if self.on_call_ended is not None:
            self.on_call_ended()
