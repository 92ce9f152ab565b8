"""SIP signalling of the masking B2BUA, built on sippy (UDP, RFC 3261)."""
