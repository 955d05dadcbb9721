"""Exceptions raised by reindex, and the exit statuses the CLI maps them to."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_DIFFERENCES = 1  # reindex diff, like diff(1)
EXIT_CONFIG = 2
EXIT_LOCKED = 3


class ReindexError(Exception):
    """Base of every error reindex raises on purpose; ``str()`` is a one-line message."""

    exit_status = EXIT_FAILED


class ConfigurationError(ReindexError):
    """Settings, definitions or command-line arguments are wrong; nothing was changed."""

    exit_status = EXIT_CONFIG


class UnknownIndexError(ConfigurationError):
    """A name given on the command line matches no registered definition."""

    def __init__(self, names: list[str], known: list[str]) -> None:
        self.names = names
        self.known = known
        listed = ", ".join(known) if known else "none registered"
        super().__init__(f"unknown index {', '.join(names)} (known: {listed})")


class ConnectionFailed(ConfigurationError):
    """The search server could not be reached at all."""


class RunFailed(ReindexError):
    """A rebuild failed before the swap; the alias was left where it was.

    ``result`` holds the counters of the run up to the failure, when there are any.
    """

    def __init__(self, message: str, result: object | None = None) -> None:
        super().__init__(message)
        self.result = result
