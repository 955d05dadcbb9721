"""Where the command line's lines go: results to stdout, diagnostics to stderr, or a log file.

Every line on stderr has one shape: ``reindex: <text>`` for a notice,
``reindex: warning: <text>`` and ``reindex: error: <text>``. With ``--log-file`` (cron),
every line goes to the file, each with a time stamp, the host and the process, and
only errors also go to stderr, so that cron mails failures and nothing else: a run
skipped because another host holds the lock is a notice in the log, not a mail.
``--json`` data always goes to stdout. Secrets are redacted everywhere.
"""

from __future__ import annotations

import datetime
import os
import socket
from collections.abc import Callable
from typing import IO

import click

from reindex.errors import ConfigurationError


class Console:
    """The output of one invocation of the command line."""

    def __init__(self, quiet: bool = False, redact: Callable[[str], str] = str, log_file: str | None = None) -> None:
        self.quiet = quiet
        self.redact = redact
        self.log_file = log_file
        self._log: IO[str] | None = None

    def result(self, line: str) -> None:
        """A line of the command's result (stdout, or the log)."""
        if self.log_file:
            self._write_log(line)
        elif not self.quiet:
            click.echo(self.redact(line))

    def data(self, text: str) -> None:
        """``--json`` data: stdout, always."""
        click.echo(self.redact(text))

    def notice(self, text: str) -> None:
        """Something worth knowing that is not a problem (stderr unless --quiet, or the log)."""
        self._diagnostic(f"reindex: {text}")

    def warning(self, text: str) -> None:
        """Something that did not fail the command but deserves a look."""
        self._diagnostic(f"reindex: warning: {text}")

    def error(self, text: str, detail: str | None = None) -> None:
        """A failure: stderr always (and the log); ``detail`` (a traceback) below it."""
        lines = [f"reindex: error: {text}"] + (detail.rstrip().splitlines() if detail else [])
        for line in lines:
            if self.log_file:
                self._write_log(line)
            click.echo(self.redact(line), err=True)

    def open(self) -> None:
        """Open the log file now, so that a path that cannot be written fails before the work.

        On failure the lines go to the terminal instead, and ConfigurationError is raised.
        """
        if self.log_file and self._log is None:
            try:
                self._log = open_log(self.log_file)
            except ConfigurationError:
                self.log_file = None
                raise

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def _diagnostic(self, line: str) -> None:
        if self.log_file:
            self._write_log(line)
        elif not self.quiet:
            click.echo(self.redact(line), err=True)

    def _write_log(self, line: str) -> None:
        self.open()
        assert self._log is not None
        stamp = datetime.datetime.now(datetime.timezone.utc).astimezone().isoformat(timespec="seconds")
        line = line.removeprefix("reindex: ")  # the log's own prefix names the program
        self._log.write(f"{stamp} {socket.gethostname()} reindex[{os.getpid()}]: {self.redact(line)}\n")
        self._log.flush()


def open_log(path: str) -> IO[str]:
    """Open ``path`` for appending, creating its directory; ConfigurationError (one line) if impossible."""
    try:
        directory = os.path.dirname(os.path.abspath(path))
        os.makedirs(directory, exist_ok=True)
        return open(path, "a", encoding="utf-8")
    except OSError as exc:
        raise ConfigurationError(f"cannot write --log-file {path}: {exc.strerror}") from None
