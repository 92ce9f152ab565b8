"""Per-call capture of keyed card fields, as a state machine fed one key at a time.

Fields are collected in order. A field ends on ``#``, on reaching its maximum
length (for a PAN, the longest length of its brand), or when no key came for
``field_timeout_s`` after its first digit. ``*`` clears the field being keyed.
A field that ends invalid is cleared and asked for again, up to
``max_attempts`` times. The agent may restart any field. Progress goes out as
plain JSON-safe dicts holding only lengths, masked display, brand and validity.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from tokenizer import brands, lifetime
from tokenizer.clock import Clock, SystemClock
from tokenizer.display import mask_other, mask_pan
from tokenizer.fields import FieldSpec, Validation, max_length_for, validate
from tokenizer.luhn import luhn_valid
from tokenizer.sensitive import SensitiveDigits

Event = dict[str, Any]
EventSink = Callable[[Event], None]

COLLECTING, COMPLETE, CANCELLED, TIMED_OUT, FAILED = (
    "collecting",
    "complete",
    "cancelled",
    "timed_out",
    "failed",
)


@dataclass(frozen=True)
class CaptureSettings:
    display_mode: str = "last4"
    field_timeout_s: float = 10.0
    session_timeout_s: float = 180.0
    max_attempts: int = 3
    allow_unknown_brand: bool = False


class CaptureSession:
    """Collects the fields of one payment; holds their digits until ``wipe()``."""

    def __init__(
        self,
        fields: Sequence[FieldSpec],
        *,
        settings: CaptureSettings | None = None,
        clock: Clock | None = None,
        emit: EventSink | None = None,
    ) -> None:
        if not fields:
            raise ValueError("a capture needs at least one field")
        names = [f.name for f in fields]
        if len(set(names)) != len(names):
            raise ValueError("field names must be unique")
        self.fields = tuple(fields)
        self.settings = settings or CaptureSettings()
        self.clock = clock or SystemClock()
        self._emit = emit or (lambda event: None)
        self._values = {f.name: SensitiveDigits() for f in self.fields}
        self._results: dict[str, Validation | None] = {f.name: None for f in self.fields}
        self._attempts = {f.name: 1 for f in self.fields}
        self.state = COLLECTING
        self.index = 0
        self._last_key_at = self.clock.monotonic()
        self._field_started = True
        self._lifetime_seq = lifetime.track(self)

    def __del__(self) -> None:
        # last resort: a capture dropped without wipe() is wiped here and the drop recorded
        # (tokenizer.lifetime), so tests can tell that its owner never closed it
        try:
            values = self.__dict__.get("_values")
            if values and any(len(v) for v in values.values()):
                lifetime.dropped(self.__dict__.get("_lifetime_seq", 0))
                for v in values.values():
                    v.wipe()
        except Exception:  # a finaliser must never raise (e.g. at interpreter shutdown)
            pass

    def __repr__(self) -> str:
        return f"CaptureSession(state={self.state!r}, field={self.current_name!r})"

    # --- public inputs -------------------------------------------------
    def digit(self, key: str) -> None:
        """Feed one key: ``0-9``, ``*`` (clear field) or ``#`` (end field); others are ignored."""
        self.poll()
        if self.state != COLLECTING:
            return
        self._last_key_at = self.clock.monotonic()
        spec = self.fields[self.index]
        value = self._values[spec.name]
        if key == "*":
            value.wipe()
            self._progress(spec, cleared=True)
        elif key == "#":
            if value:  # a '#' before any digit is a stray key, not an empty entry
                self._end_field(spec, "hash")
        elif len(key) == 1 and key in "0123456789":
            value.append(key)
            if len(value) >= max_length_for(spec, self.brand):
                self._end_field(spec, "max_length")
            else:
                self._progress(spec)

    def poll(self) -> None:
        """Apply timeouts; call it periodically (``digit`` calls it too)."""
        if self.state != COLLECTING:
            return
        idle = self.clock.monotonic() - self._last_key_at
        spec = self.fields[self.index]
        if self._values[spec.name] and idle >= self.settings.field_timeout_s:
            self._last_key_at = self.clock.monotonic()
            self._end_field(spec, "timeout")
        elif idle >= self.settings.session_timeout_s:
            self._finish(TIMED_OUT)

    def restart_field(self, name: str) -> None:
        """Agent action: clear ``name`` and ask for it again (other valid fields are kept).

        Also revives a capture that failed on too many invalid attempts."""
        if self.state in (CANCELLED, TIMED_OUT):
            return
        names = [f.name for f in self.fields]
        if name not in names:
            raise ValueError(f"no field named {name!r}")
        self._values[name].wipe()
        self._results[name] = None
        self._attempts[name] = 1
        spec = self.fields[names.index(name)]
        if spec.kind == "pan":
            for f in self.fields:
                if f.kind == "cvv":  # its length depends on the brand
                    self._values[f.name].wipe()
                    self._results[f.name] = None
        self.state = COLLECTING
        self._last_key_at = self.clock.monotonic()
        self._start(names.index(name), restarted=True)

    def cancel(self) -> None:
        if self.state in (CANCELLED, TIMED_OUT):
            return
        self._finish(CANCELLED)

    def wipe(self) -> None:
        """Overwrite every digit held."""
        for value in self._values.values():
            value.wipe()

    def held_digits(self) -> int:
        """How many clear digits this capture holds (for tokenizer.lifetime; never the digits)."""
        return sum(len(value) for value in self._values.values())

    # --- public views ----------------------------------------------------
    @property
    def current_name(self) -> str | None:
        return self.fields[self.index].name if self.state == COLLECTING else None

    @property
    def brand(self) -> str | None:
        for f in self.fields:
            if f.kind == "pan":
                return brands.detect_brand(self._values[f.name].first(6))
        return None

    def value(self, name: str) -> SensitiveDigits:
        """The digits of a field (for tokenising and hand-off only; never log them)."""
        return self._values[name]

    def value_of_kind(self, kind: str) -> SensitiveDigits | None:
        for f in self.fields:
            if f.kind == kind:
                return self._values[f.name]
        return None

    def field_status(self, spec: FieldSpec) -> dict[str, Any]:
        value = self._values[spec.name]
        result = self._results[spec.name]
        complete = result is not None and result.valid
        status = {
            "field": spec.name,
            "kind": spec.kind,
            "entered": len(value),
            "complete": complete,
            "valid": None if result is None else result.valid,
            "reason": None if result is None else result.reason,
            "attempt": self._attempts[spec.name],
        }
        if spec.kind == "pan":
            status["display"] = mask_pan(value, complete=complete, mode=self.settings.display_mode)
            status["brand"] = self.brand
            status["luhn"] = luhn_valid(value.reveal_bytes()) if complete else None
        else:
            status["display"] = mask_other(value)
        return status

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "current_field": self.current_name,
            "fields": [self.field_status(f) for f in self.fields],
        }

    # --- internals -------------------------------------------------------
    def _progress(self, spec: FieldSpec, **extra: Any) -> None:
        self._emit({"event": "progress", **self.field_status(spec), **extra})

    def _start(self, index: int, restarted: bool = False) -> None:
        self.index = index
        spec = self.fields[index]
        self._emit(
            {
                "event": "field_started",
                "field": spec.name,
                "kind": spec.kind,
                "index": index,
                "attempt": self._attempts[spec.name],
                "restarted": restarted,
            }
        )

    def _end_field(self, spec: FieldSpec, ended_by: str) -> None:
        value = self._values[spec.name]
        result = validate(
            spec,
            value,
            brand=self.brand,
            now=self.clock.now(),
            allow_unknown_brand=self.settings.allow_unknown_brand,
        )
        self._results[spec.name] = result
        self._progress(spec, ended_by=ended_by)
        if not result.valid:
            value.wipe()
            self._results[spec.name] = None
            if self._attempts[spec.name] >= self.settings.max_attempts:
                self._finish(FAILED)
                return
            self._attempts[spec.name] += 1
            self._start(self.index)
            return
        self._advance()

    def _advance(self) -> None:
        for i, f in enumerate(self.fields):
            result = self._results[f.name]
            if not (result and result.valid):
                self._start(i)
                return
        self.state = COMPLETE
        self._emit({"event": "complete", "brand": self.brand})

    def _finish(self, state: str) -> None:
        self.state = state
        self.wipe()
        self._results = dict.fromkeys(self._results)
        self._emit({"event": state})
