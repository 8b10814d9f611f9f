"""Errors whose messages are safe to show to the people who use callback."""

from __future__ import annotations


class CallbackError(Exception):
    """Base of every error that callback raises on purpose.

    The message is written for the user: it names the file, row and field, or the request and
    parameter, and never carries a citizen's name or full phone number.
    """


class ConfigError(CallbackError):
    """A setting is missing, malformed or contradicts another."""


class DatabaseError(CallbackError):
    """The database is unreachable, too old, or not a callback database."""


class ImportFileError(CallbackError):
    """A file cannot be imported at all (unreadable, unknown layout, undetectable encoding).

    Nothing from the file has been stored when this is raised.
    """

    def __init__(self, path: str, message: str, row: int | None = None) -> None:
        self.path = path
        self.message = message
        self.row = row
        where = f"{path}, row {row}" if row is not None else path
        super().__init__(f"{where}: {message}")

    def __reduce__(self) -> tuple[type[ImportFileError], tuple[str, str, int | None]]:
        # Raised in the reader process and re-raised here: keep it picklable.
        return (type(self), (self.path, self.message, self.row))


class MappingError(CallbackError):
    """A --mapping file is malformed."""


class PluginError(CallbackError):
    """A plugin registered something invalid or a name another plugin already took."""
