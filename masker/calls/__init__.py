"""Calls: the registry, the digit queue to the tokeniser, the PSP hand-off."""
