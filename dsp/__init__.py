"""Audio signal processing: G.711, keypad-tone (DTMF) detection and masking.

Knows audio and nothing of SIP or card data.
"""
