"""Random identifiers that log redaction can never take for a card number.

Log lines pass through a redactor that blanks any Luhn-valid run of 12-19
digits.  A random hex identifier holds such a run now and then (a 32-digit
SIP Call-ID about once in 150), and a redacted Call-ID cannot be correlated
across log lines.  Identifiers made here never hold 12 digits in a row.
"""

from __future__ import annotations

import re
import secrets

#: The shortest digit run the redactor looks at (tokenizer.redact).
_DIGIT_RUN = re.compile(r"[0-9]{12}")


def log_safe_hex(nbytes: int = 8) -> str:
    """`secrets.token_hex(nbytes)` with no run of 12 digits."""
    while True:
        value = secrets.token_hex(nbytes)
        if not _DIGIT_RUN.search(value):
            return value
