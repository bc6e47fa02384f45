"""Errors a user can fix, carrying where the problem is and how to fix it."""

from __future__ import annotations


class ContextflowError(Exception):
    """Base of all contextflow errors."""


class UserError(ContextflowError):
    """Bad input (a file, a flag, a value): reported as a plain message, exit code 2 by default."""

    exit_code: int = 2

    def __init__(self, message: str, *, hint: str | None = None, exit_code: int | None = None) -> None:
        self.message = message
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code
        super().__init__(message if not hint else f"{message}\n  hint: {hint}")
