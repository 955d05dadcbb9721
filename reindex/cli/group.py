"""The command group's machinery: global options (anywhere on the line), the invocation's state, one error line."""

from __future__ import annotations

import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import click

from reindex import errors
from reindex.cli.console import Console
from reindex.errors import ReindexError


@dataclass
class State:
    """What the global options said; Django and the configuration are set up on first use."""

    settings: str | None = None
    pythonpath: str | None = None
    es_url: str | None = None
    verbose: int = 0
    quiet: bool = False
    log_file: str | None = None
    _config: Any = None
    console: Console = field(default_factory=Console)

    def __post_init__(self) -> None:
        self.console = Console(quiet=self.quiet, redact=self.redact, log_file=self.log_file)

    @property
    def config(self) -> Any:
        """The configuration of this invocation (boots Django the first time)."""
        if self._config is None:
            from reindex.boot import setup_django
            from reindex.config import Config

            setup_django(self.settings, self.pythonpath)
            self._config = Config.load(es_url=self.es_url)
        return self._config

    def redact(self, text: str) -> str:
        """``text`` without secrets (URL credentials only, before the configuration is known)."""
        from reindex.server.connection import Connection, redact

        if self._config is not None:
            return Connection(self._config).redact(text)
        return redact(text, [])

    def say(self, message: str) -> None:
        """A notice on stderr (or in the log), unless --quiet."""
        self.console.notice(message)

    def out(self, text: str) -> None:
        """A result line on stdout (or in the log)."""
        self.console.result(text)

    def data(self, text: str) -> None:
        """``--json`` data on stdout."""
        self.console.data(text)


pass_state = click.make_pass_decorator(State)


#: The options of the ``reindex`` group, which may also be given after the command.
GLOBAL_OPTIONS = {"--settings": True, "--pythonpath": True, "--es-url": True, "--log-file": True}


GLOBAL_FLAGS = {"-v", "--verbose", "-q", "--quiet"}


def hoist_global_options(args: list[str], commands: Sequence[str]) -> list[str]:
    """Move the group's options found after the command name to before it.

    ``reindex rebuild --settings mysite.settings products`` then means what
    ``reindex --settings mysite.settings rebuild products`` does. Nothing after ``--`` moves.
    """
    position = next((i for i, arg in enumerate(args) if arg in commands), None)
    if position is None:
        return args
    before, after, moved, i = args[: position + 1], [], [], position + 1
    while i < len(args):
        arg = args[i]
        name = arg.split("=", 1)[0]
        if arg == "--":
            after += args[i:]
            break
        if name in GLOBAL_OPTIONS:
            takes_value = "=" not in arg and i + 1 < len(args)
            moved += args[i : i + 2] if takes_value else [arg]
            i += 2 if takes_value else 1
            continue
        if arg in GLOBAL_FLAGS or (arg.startswith("-v") and set(arg[1:]) == {"v"}):
            moved.append(arg)
        else:
            after.append(arg)
        i += 1
    return before[:position] + moved + before[position:] + after


class ExampleHelp:
    """Help whose examples name the program as it was run (``python manage.py reindex``)."""

    help: str | None

    def format_help_text(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        root = ctx.find_root().info_name or "reindex"
        if root != "reindex" and self.help:
            original = self.help
            self.help = original.replace("reindex --settings mysite.settings", f"python {root}")
            try:
                super().format_help_text(ctx, formatter)  # type: ignore[misc]
            finally:
                self.help = original
            return
        super().format_help_text(ctx, formatter)  # type: ignore[misc]


class ExampleCommand(ExampleHelp, click.Command):
    """A command whose help examples name the program as it was run."""


class ReindexGroup(ExampleHelp, click.Group):
    """Maps ReindexError, and any error answer of the server, to one line and its exit status."""

    command_class = ExampleCommand

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(args, list(self.commands)))

    def invoke(self, ctx: click.Context) -> Any:
        from elasticsearch import ApiError, TransportError

        from reindex.server.connection import describe_server_error

        try:
            status = super().invoke(ctx)
        except errors.Locked as exc:  # another run is doing the work: not a failure
            (ctx.find_object(State) or State()).say(str(exc))
            ctx.exit(exc.exit_status)
        except ReindexError as exc:
            report_error(ctx.find_object(State), exc)
            ctx.exit(exc.exit_status)
        except (ApiError, TransportError) as exc:  # a command that did not expect it
            error = errors.ServerError(describe_server_error(exc))
            error.__cause__ = exc
            report_error(ctx.find_object(State), error)
            ctx.exit(error.exit_status)
        finally:
            state = ctx.find_object(State)
            if state is not None:
                state.console.close()
        ctx.exit(int(status or 0))


def report_error(
    state: State | None, exc: BaseException, detail: str | None = None, message: str | None = None
) -> None:
    """``reindex: error: <one line>`` on stderr, secrets redacted; -v adds the traceback.

    ``detail``: lines to show below it (e.g. what a refusal lists); ``message``: instead of ``str(exc)``.
    """
    state = state or State()
    if state.verbose:
        detail = "\n".join(part for part in (detail, "".join(traceback.format_exception(exc))) if part)
    state.console.error(message or str(exc), detail or None)
