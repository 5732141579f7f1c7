"""Errors a user can cause, kept apart from bugs so the CLI can print them on one line."""


class UserError(Exception):
    """Something the user gave was wrong; the message says what, where, and what to do."""
