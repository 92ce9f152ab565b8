"""Wire formats: RTP/RTCP, RFC 4733 telephone-events and SDP offer/answer."""
