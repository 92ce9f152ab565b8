"""Tokens that stand for a card: random vault tokens and format-preserving FF1 tokens.

Both kinds are unique per card per scope: a keyed fingerprint (HMAC of scope
and PAN under the key store's index key) finds the card's live record and its
token is reused. The FPE token keeps the BIN (first six) and last four digits
and replaces the middle with FF1 ciphertext; it is built to FAIL the Luhn
check (see ``FpeTokenizer``), so it is deterministic per card and scope and
can never pass for a real card.

FF1 is a permutation for one key, but the FPE key follows the data key, so two
cards of the same BIN and last four can get the same token under two key
generations (84-89 of 3,000 + 3,000 such cards across one rotation).  The vault
refuses such a write (``TokenCollision``) and ``FpeTokenizer.candidates`` gives
the card's next token, deterministically: the same construction under the next
tweak (attempt 1, 2, ...).  The vault, not FF1 inversion, is the way back from a
token to its card (``detokenize`` inverts first-choice tokens only).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from tokenizer.ff1 import FF1
from tokenizer.luhn import luhn_valid
from tokenizer.sensitive import SensitiveDigits

VAULT_TOKEN_PREFIX = "tok_"
TOKEN_KINDS = ("vault", "fpe")
FF1_MIN_DIGITS = 6
# candidate tokens tried for one card before giving up (a collision is ~1 in 1,000 at
# 3,000 cards of one BIN and last four; eight in a row would need ~10^-24)
TOKEN_CANDIDATES = 8


def new_vault_token() -> str:
    """``tok_`` + 22 url-safe characters (128 random bits)."""
    return VAULT_TOKEN_PREFIX + secrets.token_urlsafe(16)


def card_fingerprint(index_key: bytes, scope: str, pan: SensitiveDigits) -> str:
    mac = hmac.new(index_key, scope.encode() + b"\x1f", hashlib.sha256)
    mac.update(pan.reveal_bytes())
    return mac.hexdigest()


def fpe_key(data_key: bytes, scope: str) -> bytes:
    """The FF1 key for one scope, derived from a data key."""
    return HKDF(
        algorithm=hashes.SHA256(),
        length=32,
        salt=None,
        info=b"dtmf-masker fpe token\x1f" + scope.encode(),
    ).derive(data_key)


def _split(n: int) -> tuple[int, int]:
    """(kept head, encrypted middle) lengths; the last four are always kept."""
    middle = max(n - 10, FF1_MIN_DIGITS)
    return n - 4 - middle, middle


class FpeTokenizer:
    """Format-preserving tokens for one scope and key.

    FF1 with cycle walking is a permutation of the middles that make a
    Luhn-valid card (every PAN is one); the token then shifts the last middle
    digit by five, and changing any one digit of a Luhn-valid number makes it
    invalid. Both steps are invertible, so the mapping is one-to-one.
    """

    def __init__(self, key: bytes, scope: str) -> None:
        self._ff1 = FF1(key, 10)
        self._scope = scope.encode()

    def __repr__(self) -> str:
        return "FpeTokenizer(key=<hidden>)"

    def _tweak(self, head: str, tail: str) -> bytes:
        return self._scope + b"\x1f" + head.encode() + b"\x1f" + tail.encode()

    @staticmethod
    def _parts(digits: str) -> tuple[str, str, str]:
        keep, middle = _split(len(digits))
        return digits[:keep], digits[keep : keep + middle], digits[keep + middle :]

    def tokenize(self, pan: SensitiveDigits) -> str:
        """The card's first-choice token (what `detokenize` inverts)."""
        return next(self.candidates(pan))

    def candidates(self, pan: SensitiveDigits, limit: int = TOKEN_CANDIDATES) -> Iterator[str]:
        """The card's tokens in order of preference, each taken only when the vault holds
        the previous one for another card.  Attempt 0 is `tokenize`'s token; attempt i
        is the same construction with the attempt number in the tweak.  An attempt whose
        cycle walk comes back to the card's own middle gives no token (its shift would be
        the card with one digit changed)."""
        digits = pan.reveal()
        if not luhn_valid(digits):
            raise ValueError("FPE tokens are issued for Luhn-valid card numbers only")
        head, mid, tail = self._parts(digits)
        for attempt in range(limit):
            tweak = self._tweak(head, tail) + (b"\x1f#%d" % attempt if attempt else b"")
            x = self._ff1.encrypt(mid, tweak)
            while x != mid and not luhn_valid(head + x + tail):
                x = self._ff1.encrypt(x, tweak)
            if x != mid:
                yield head + x[:-1] + str((int(x[-1]) + 5) % 10) + tail

    def detokenize(self, token: str) -> SensitiveDigits:
        if not token.isdigit() or luhn_valid(token):
            raise ValueError("not an FPE token")
        head, mid, tail = self._parts(token)
        tweak = self._tweak(head, tail)
        x = mid[:-1] + str((int(mid[-1]) + 5) % 10)
        if not luhn_valid(head + x + tail):
            raise ValueError("not an FPE token")
        x = self._ff1.decrypt(x, tweak)
        while not luhn_valid(head + x + tail):
            x = self._ff1.decrypt(x, tweak)
        return SensitiveDigits(head + x + tail)


@dataclass(frozen=True)
class IssuedToken:
    """What the agent side may know about a token."""

    token: str
    kind: str
    brand: str
    last4: str
    pan_length: int
    reused: bool
