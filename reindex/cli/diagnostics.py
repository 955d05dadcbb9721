"""Where log records go when the CLI runs: the invocation's ``Console``, one line each.

The tool's own warnings (``reindex.*``, e.g. retries) show unless ``--quiet``; the
client's (``elastic_transport``, ``elasticsearch``) only with ``-vv``. A record at
ERROR is an error line, at WARNING a warning, below it a notice; the console redacts
secrets and, with ``--log-file``, writes them to the log.
"""

from __future__ import annotations

import logging

from reindex.cli.console import Console

CLIENT_LOGGERS = ("elastic_transport", "elasticsearch")


class ConsoleHandler(logging.Handler):
    """Hands each record to the console as a line of its level."""

    def __init__(self, console: Console) -> None:
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
            if record.exc_info and record.levelno >= logging.ERROR:
                message += f": {record.exc_info[1]}"
            if record.levelno >= logging.ERROR:
                self.console.error(message)
            elif record.levelno >= logging.WARNING:
                self.console.warning(message)
            else:
                self.console.notice(message)
        except Exception:  # a log line must never break a run
            self.handleError(record)


def configure(verbose: int, quiet: bool, console: Console) -> None:
    """Route ``reindex.*`` and the client's loggers to ``console`` for this invocation.

    Notices (a run's start) show with ``-v``, and are always kept in a ``--log-file``.
    """
    handler = ConsoleHandler(console)
    ours = logging.getLogger("reindex")
    ours.setLevel(logging.ERROR if quiet else (logging.INFO if verbose or console.log_file else logging.WARNING))
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
        if isinstance(old, (ConsoleHandler, logging.NullHandler)):
            logger.removeHandler(old)
    logger.addHandler(handler)
    logger.propagate = False
