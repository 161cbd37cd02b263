"""Errors the library raises for bad input, each a one-line message that names the field."""


class ConfigError(ValueError):
    """A trial config field is missing, of the wrong type or out of range.

    `path` is the dotted name of the field (e.g. ``unlearn.steps``); the message says what is allowed.
    """

    def __init__(self, path: str, message: str):
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


class DataNotFoundError(FileNotFoundError):
    """No copy of a data set could be found or downloaded."""


class CacheError(RuntimeError):
    """A cache entry is unreadable (corrupt or written by another format)."""
