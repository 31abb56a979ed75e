"""User-facing errors: one line, naming the file, the key or row, and the reason."""

from __future__ import annotations


class UserError(Exception):
    """An error in what the user gave us (a file, a key, a value). The CLI prints it on one line
    and exits with code 2; no traceback."""

    def __init__(self, message: str, *, source: str | None = None):
        self.source = source
        super().__init__(f"{source}: {message}" if source else message)
