"""Exceptions whose message is safe to show a user (never card data)."""


class UserError(Exception):
    """A problem with the user's input or configuration; shown as one line."""
