"""Card-data capture, validation, tokens, vault and gateway hand-off.

Knows card data and nothing of audio or SIP.
"""
