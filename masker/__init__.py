"""The masking service: wires dsp/ and tokenizer/ to calls (SIP, RTP, API)."""
