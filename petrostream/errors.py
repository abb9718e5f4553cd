"""Errors a user can act on. The CLI prints them as one line and exits non-zero (no traceback)."""


class UserError(Exception):
    """Base for errors whose message alone tells the user what is wrong (and where)."""
