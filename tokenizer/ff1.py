"""NIST SP 800-38G FF1 format-preserving encryption on ``cryptography``'s AES.

No maintained FF1 package built on ``cryptography`` exists on PyPI (``ff3`` is
FF3-1, ``FPE`` is an unmaintained Cython build), so this follows the standard's
Algorithms 7-8 directly with Python integers. It passes NIST's FF1 samples 1-9.
"""

from __future__ import annotations

import string

from cryptography.hazmat.primitives.ciphers import Cipher, CipherContext, algorithms, modes

DEFAULT_ALPHABET = string.digits + string.ascii_lowercase
MIN_DOMAIN = 1_000_000
ROUNDS = 10


class FF1:
    """FF1 over a fixed radix; ``encrypt``/``decrypt`` take numeral strings."""

    def __init__(self, key: bytes, radix: int = 10, alphabet: str | None = None) -> None:
        if len(key) not in (16, 24, 32):
            raise ValueError("FF1 key must be 16, 24 or 32 bytes")
        alphabet = alphabet if alphabet is not None else DEFAULT_ALPHABET[:radix]
        if not 2 <= radix <= 65536 or len(alphabet) != radix or len(set(alphabet)) != radix:
            raise ValueError("radix and alphabet do not agree")
        self.radix = radix
        self._alphabet = alphabet
        self._index = {ch: i for i, ch in enumerate(alphabet)}
        self._aes = Cipher(algorithms.AES(bytes(key)), modes.ECB())

    def __repr__(self) -> str:
        return f"FF1(radix={self.radix}, key=<hidden>)"

    def _num(self, s: str) -> int:
        x = 0
        try:
            for ch in s:
                x = x * self.radix + self._index[ch]
        except KeyError:
            raise ValueError("numeral outside the alphabet") from None
        return x

    def _str(self, x: int, m: int) -> str:
        out = []
        for _ in range(m):
            x, r = divmod(x, self.radix)
            out.append(self._alphabet[r])
        return "".join(reversed(out))

    @staticmethod
    def _prf(enc: CipherContext, data: bytes) -> bytes:
        """CBC-MAC with a zero IV over whole blocks (the standard's PRF)."""
        y = 0
        for i in range(0, len(data), 16):
            block = (y ^ int.from_bytes(data[i : i + 16], "big")).to_bytes(16, "big")
            y = int.from_bytes(enc.update(block), "big")
        return y.to_bytes(16, "big")

    def _check_length(self, n: int) -> None:
        if n < 2 or self.radix**n < MIN_DOMAIN:
            raise ValueError("FF1 input too short: the domain must have at least 10^6 values")
        if n > 2**32 - 1:
            raise ValueError("FF1 input too long")

    def _round_setup(self, n: int, tweak: bytes) -> tuple[int, int, int, int, bytes]:
        u = n // 2
        v = n - u
        b = ((self.radix**v - 1).bit_length() + 7) // 8
        d = 4 * ((b + 3) // 4) + 4
        p = (
            bytes([1, 2, 1])
            + self.radix.to_bytes(3, "big")
            + bytes([10, u % 256])
            + n.to_bytes(4, "big")
            + len(tweak).to_bytes(4, "big")
        )
        return u, v, b, d, p

    def _round_y(
        self, enc: CipherContext, p: bytes, tweak: bytes, i: int, b: int, d: int, half: int
    ) -> int:
        pad = bytes((-len(tweak) - b - 1) % 16)
        q = tweak + pad + bytes([i]) + half.to_bytes(b, "big")
        r = self._prf(enc, p + q)
        s = bytearray(r)
        r_int = int.from_bytes(r, "big")
        j = 1
        while len(s) < d:
            s += enc.update((r_int ^ j).to_bytes(16, "big"))
            j += 1
        return int.from_bytes(bytes(s[:d]), "big")

    def encrypt(self, plaintext: str, tweak: bytes = b"") -> str:
        n = len(plaintext)
        self._check_length(n)
        u, v, b, d, p = self._round_setup(n, tweak)
        a, bb = self._num(plaintext[:u]), self._num(plaintext[u:])
        enc = self._aes.encryptor()  # ECB: one block per update, no state between blocks
        for i in range(ROUNDS):
            m = u if i % 2 == 0 else v
            y = self._round_y(enc, p, tweak, i, b, d, bb)
            a, bb = bb, (a + y) % (self.radix**m)
        return self._str(a, u) + self._str(bb, v)

    def decrypt(self, ciphertext: str, tweak: bytes = b"") -> str:
        n = len(ciphertext)
        self._check_length(n)
        u, v, b, d, p = self._round_setup(n, tweak)
        a, bb = self._num(ciphertext[:u]), self._num(ciphertext[u:])
        enc = self._aes.encryptor()
        for i in reversed(range(ROUNDS)):
            m = u if i % 2 == 0 else v
            y = self._round_y(enc, p, tweak, i, b, d, a)
            a, bb = (bb - y) % (self.radix**m), a
        return self._str(a, u) + self._str(bb, v)
