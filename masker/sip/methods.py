"""What the masker answers for which SIP method (RFC 3261 8.2.1, 21.5.2)."""

from __future__ import annotations

#: Methods a dialog through the masker supports; sent in every Allow header.
ALLOWED = ("INVITE", "ACK", "CANCEL", "BYE", "OPTIONS", "INFO")
ALLOW = ", ".join(ALLOWED)
#: Headers that must appear exactly once in a request (RFC 3261 8.1.1, 20).
SINGLE_HEADERS = ("call-id", "cseq", "from", "to", "max-forwards", "content-length")
MANDATORY_HEADERS = ("via", "call-id", "cseq", "from", "to")
#: Event-package methods (RFC 6665): refused with 489 Bad Event from either side, in
#: or out of a dialog; KPML (RFC 4730) digit reports would travel in them.
EVENT_METHODS = ("SUBSCRIBE", "NOTIFY")
