"""Errors a user can cause. The CLI prints their message (no traceback) and exits with 2."""


class TunewiseError(Exception):
    """A problem the user can fix: bad file, wrong column, unknown name, missing model."""

    exit_code = 2
