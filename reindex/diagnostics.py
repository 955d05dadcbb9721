"""Where log records go when the CLI runs: stderr, one line each, secrets redacted.

The tool's own warnings (``reindex.*``, e.g. retries) show unless ``--quiet``; the
client's (``elastic_transport``, ``elasticsearch``) only with ``-vv``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import click

CLIENT_LOGGERS = ("elastic_transport", "elasticsearch")


class RedactingStderrHandler(logging.Handler):
    """Writes each record as ``reindex: <message>`` on the current stderr, redacted."""

    def __init__(self, redact: Callable[[str], str]) -> None:
        super().__init__()
        self.redact = redact

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info and record.levelno >= logging.ERROR:
                message += f": {record.exc_info[1]}"
            click.echo(f"reindex: {self.redact(message)}", err=True)
        except Exception:  # a log line must never break a run
            self.handleError(record)


def configure(verbose: int, quiet: bool, redact: Callable[[str], str]) -> None:
    """Route ``reindex.*`` and the client's loggers to stderr for this invocation."""
    handler = RedactingStderrHandler(redact)
    ours = logging.getLogger("reindex")
    ours.setLevel(logging.ERROR if quiet else (logging.INFO if verbose else logging.WARNING))
    _replace_handler(ours, handler)
    for name in CLIENT_LOGGERS:
        client_logger = logging.getLogger(name)
        if verbose >= 2 and not quiet:
            client_logger.setLevel(logging.WARNING)
            _replace_handler(client_logger, handler)
        else:
            _replace_handler(client_logger, logging.NullHandler())  # not Python's last-resort stderr


def _replace_handler(logger: logging.Logger, handler: logging.Handler) -> None:
    for old in list(logger.handlers):
        if isinstance(old, (RedactingStderrHandler, logging.NullHandler)):
            logger.removeHandler(old)
    logger.addHandler(handler)
    logger.propagate = False
