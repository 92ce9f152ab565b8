"""A holder for card digits that never shows them and can be wiped.

Python strings are immutable and cannot be zeroed, so card digits live in a
``bytearray`` that ``wipe()`` overwrites in place. ``repr``/``str``/``format``
show only the length, and pickling is refused so the digits cannot leak into a
cache, a queue or a crash dump by accident.
"""

from __future__ import annotations

from typing import NoReturn

DIGITS = frozenset(b"0123456789")


class SensitiveDigits:
    """Mutable, wipeable digit buffer whose text form never contains the digits."""

    __slots__ = ("_buf", "__weakref__")

    def __init__(self, digits: str | bytes | bytearray = b"") -> None:
        data = digits.encode("ascii") if isinstance(digits, str) else bytes(digits)
        if any(ch not in DIGITS for ch in data):
            raise ValueError("SensitiveDigits accepts only the digits 0-9")
        self._buf = bytearray(data)

    def append(self, digit: str) -> None:
        if len(digit) != 1 or digit not in "0123456789":
            raise ValueError("not a single digit")
        self._buf.append(ord(digit))

    def wipe(self) -> None:
        """Overwrite every byte with zero, then forget the length."""
        for i in range(len(self._buf)):
            self._buf[i] = 0
        try:
            del self._buf[:]
        except BufferError:  # someone holds a view of it: it stays zeroed, so start afresh
            self._buf = bytearray()

    clear = wipe

    def reveal(self) -> str:
        """The digits in clear; only for crypto and the payment hand-off."""
        return self._buf.decode("ascii")

    def reveal_bytes(self) -> bytes:
        return bytes(self._buf)

    def last(self, n: int) -> str:
        """The last ``n`` digits (for the permitted last-four display)."""
        return self._buf[-n:].decode("ascii") if n else ""

    def first(self, n: int) -> str:
        """The first ``n`` digits (for the permitted BIN display and brand lookup)."""
        return self._buf[:n].decode("ascii")

    def copy(self) -> SensitiveDigits:
        return SensitiveDigits(self._buf)

    def __len__(self) -> int:
        return len(self._buf)

    def __bool__(self) -> bool:
        return bool(self._buf)

    def __repr__(self) -> str:
        return f"SensitiveDigits(<{len(self._buf)} digits>)"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SensitiveDigits):
            return NotImplemented
        import hmac

        return hmac.compare_digest(bytes(self._buf), bytes(other._buf))

    # unhashable on purpose (no digits in sets/dict keys); mypy wants a callable here
    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> NoReturn:
        raise TypeError("SensitiveDigits cannot be pickled")
