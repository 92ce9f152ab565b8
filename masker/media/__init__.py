"""The anchored RTP media plane: per-call sockets, latching, live masking, pacing."""
