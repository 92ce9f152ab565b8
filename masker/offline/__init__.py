"""Recordings: the WAV harness and the independent DTMF receivers."""
