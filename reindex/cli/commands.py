"""The ``reindex`` command line: parse options, boot Django, call the public API, print.

Exit statuses: 0 success; 1 a run failed and the alias was left alone; 2 usage or
configuration error; 3 skipped because another run holds the lock. When a command
runs for several aliases, the most severe wins: 2, then 1, then 3.
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import click

from reindex import errors
from reindex.cli.console import Console
from reindex.config import Config
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


def json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout, nothing else.")(f)


def dry_run_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--dry-run", is_flag=True, help="Write nothing to the server; print what would be done.")(f)


def names_argument(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.argument("names", nargs=-1, metavar="[NAME]...")(f)


def alias_argument(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.argument("name", metavar="NAME")(f)


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


@click.group(cls=ReindexGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--settings", metavar="MODULE", help="Django settings module (else $DJANGO_SETTINGS_MODULE).")
@click.option("--pythonpath", metavar="DIR", type=click.Path(file_okay=False), help="Directory to add to sys.path.")
@click.option("--es-url", metavar="URL", help="Search server URL (else $REINDEX_ES_URL, else REINDEX['HOSTS']).")
@click.option("-v", "--verbose", count=True, help="More detail; with errors, the traceback.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@click.option(
    "--log-file",
    metavar="PATH",
    help="Append every line, time-stamped, to PATH (its directory is created); only errors go to stderr.",
)
@click.version_option(package_name="reindex")
@click.pass_context
def cli(
    ctx: click.Context,
    settings: str | None,
    pythonpath: str | None,
    es_url: str | None,
    verbose: int,
    quiet: bool,
    log_file: str | None,
) -> None:
    """Keep a Django site's Elasticsearch aliases whole: rebuild them with no gap in search.

    The options below may also follow the command's name.

    \b
    Example:
      reindex --settings mysite.settings rebuild products
    """
    from reindex.cli import diagnostics

    ctx.obj = state = State(settings, pythonpath, es_url, verbose, quiet, log_file)
    state.console.open()
    diagnostics.configure(verbose, quiet, state.console)


@cli.command("list")
@json_option
@pass_state
def list_command(state: State, as_json: bool) -> int:
    """List the registered index definitions.

    \b
    Example:
      reindex --settings mysite.settings list
    """
    from reindex import api
    from reindex.cli import reporting

    rows = reporting.definition_rows(api.definitions(config=state.config))
    if as_json:
        state.data(reporting.as_json(rows))
    elif not rows:
        state.say("no index definitions found (add an indexes module to an app, or REINDEX['INDEXES'])")
    else:
        for row in rows:
            state.out(reporting.format_definition_row(row))
    return errors.EXIT_OK


def keep_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--keep",
        type=click.IntRange(0),
        help=f"Previous indexes to keep for rollback (default REINDEX['KEEP'], {Config.keep}).",
    )(f)


def retry_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--retry-backoff",
        type=click.FloatRange(0, min_open=True),
        metavar="SECONDS",
        help=f"Wait before the first retry, doubling (default REINDEX['RETRY_BACKOFF'], {Config.retry_backoff}).",
    )(f)
    return click.option(
        "--max-retries",
        type=click.IntRange(0),
        help=(
            "Retries of a request the server answers 429/502/503/504 or drops "
            f"(default REINDEX['MAX_RETRIES'], {Config.max_retries})."
        ),
    )(f)


def batch_size_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--batch-size",
        type=click.IntRange(1),
        help=(
            "Rows per database query and documents per bulk request (default: the definition's batch_size, "
            f"else REINDEX['BATCH_SIZE'], {Config.batch_size})."
        ),
    )(f)


def no_progress_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--no-progress", is_flag=True, help="No progress bar, even on a terminal.")(f)


def lock_wait_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option(
        "--lock-wait",
        type=click.FloatRange(0),
        metavar="SECONDS",
        help=f"Wait this long for another run to release the alias's lock before skipping it "
        f"(default REINDEX['LOCK_WAIT'], {Config.lock_wait:g}).",
    )(f)


def load_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The options of every command that sends documents: batches, failed rows, retries, workers, progress, lock."""
    f = lock_wait_option(f)
    f = no_progress_option(f)
    f = click.option(
        "--workers",
        type=click.IntRange(1),
        help=f"Processes that build and send documents (default REINDEX['WORKERS'], {Config.workers}).",
    )(f)
    f = retry_options(f)
    f = click.option(
        "--errors-file",
        type=click.Path(dir_okay=False),
        help="Write one JSON line per failed row: alias, id, reason, error_type.",
    )(f)
    f = click.option(
        "--max-errors",
        type=click.IntRange(0),
        help=f"Rows that may fail before the run aborts (default REINDEX['MAX_ERRORS'], {Config.max_errors}).",
    )(f)
    return batch_size_option(f)


@cli.command()
@names_argument
@keep_option
@click.option(
    "--min-ratio",
    type=click.FloatRange(0, 1),
    help=(
        "Refuse to swap when the new index holds fewer than this fraction of the live documents "
        f"(default REINDEX['MIN_RATIO'], {Config.min_ratio})."
    ),
)
@click.option("--force", is_flag=True, help="Swap even when --min-ratio refuses.")
@click.option(
    "--replace-existing-index",
    is_flag=True,
    help="When the alias name is a concrete index, remove it in the same atomic request that adds the alias.",
)
@load_options
@click.option(
    "--executor",
    type=click.Choice(["local", "processes", "celery"]),
    help="Who loads the ranges: this process, --workers processes, or the site's Celery workers "
    "(default: processes with --workers above 1, else local).",
)
@click.option(
    "--queue",
    "celery_queue",
    metavar="NAME",
    help="The Celery queue of the range tasks (default REINDEX['CELERY_QUEUE'], reindex).",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Go on with the build a killed run left, keeping the ranges it loaded; else start afresh.",
)
@dry_run_option
@json_option
@pass_state
def rebuild(
    state: State,
    names: Sequence[str],
    force: bool,
    replace_existing_index: bool,
    errors_file: str | None,
    resume: bool,
    no_progress: bool,
    dry_run: bool,
    as_json: bool,
    **overrides: Any,
) -> int:
    """Rebuild aliases from the database into fresh indexes (all when no NAME).

    Builds <alias>-<timestamp>, loads it, checks its count, moves the alias to it
    in one atomic request and drops the old index. A failed run leaves the alias
    where it was. With --dry-run, print the plan (new index, rows, mapping diff,
    indexes to delete) and write nothing.

    One run per alias at a time (a lock in the search server): a run that finds
    the alias locked exits 3. SIGTERM/SIGINT delete the partial index and exit 1.
    Rows are loaded in primary-key ranges whose state is kept in the search
    server: after a kill -9, --resume goes on where the killed run stopped.

    \b
    Example:
      reindex --settings mysite.settings rebuild products --keep 1
      reindex --settings mysite.settings rebuild products --errors-file failed.jsonl
      reindex --settings mysite.settings rebuild products --workers 2
      reindex --settings mysite.settings rebuild products --executor celery --workers 8
      reindex --settings mysite.settings rebuild products --resume
    """
    from reindex import api
    from reindex.cli import reporting

    if dry_run:
        plans = api.plan(*names, force=force, config=state.config, **overrides)
        if as_json:
            state.data(reporting.as_json(plans))
        else:
            for plan in plans:
                for line in reporting.format_plan(plan):
                    state.out(line)
                if plan.refusal:
                    state.console.error(f"the real run would fail: {plan.refusal}")
        return errors.worst_status(plan.exit_status for plan in plans)
    progress = progress_for(state, no_progress, as_json)
    runs = api.rebuild_each(
        *names,
        config=state.config,
        force=force,
        replace_existing_index=replace_existing_index,
        errors_file=errors_file,
        progress=progress,
        handle_signals=True,
        resume=resume,
        **overrides,
    )
    results = []
    for result in runs:
        print_rebuild(state, result, as_json)
        results.append(result)
    if as_json:
        state.data(reporting.as_json(results))
    return errors.worst_status(r.exit_status for r in results)


def print_rebuild(state: State, result: Any, as_json: bool) -> None:
    """What one alias's rebuild says: the summary line, notices, and one error line if it failed."""
    from reindex.cli import reporting

    if result.skipped:
        state.say(result.error)
        return
    for line in reporting.rebuild_notices(result):
        state.say(line)
    started = result.new_index is not None or result.rows_read
    print_outcome(state, result, as_json, reporting.format_rebuild, reporting.alias_left, started)


def print_outcome(
    state: State,
    result: Any,
    as_json: bool,
    summary: Callable[[Any], str],
    left: Callable[[Any], str],
    started: bool,
) -> None:
    """A run's summary line, or its one error line (saying what it left); -v adds the failed rows."""
    from reindex.cli import reporting

    if result.exception is not None:
        message = f"{result.error}; {left(result)}" if started else result.error
        failures = "\n".join(reporting.format_failures(result, all_kept=True, tracebacks=True))
        report_error(state, result.exception, detail=failures if state.verbose else None, message=message)
        return
    if not as_json:
        state.out(summary(result))
    for line in reporting.format_failures(result, all_kept=bool(state.verbose), tracebacks=bool(state.verbose)):
        state.console.warning(line)


def print_in_place_runs(
    state: State, runs: Any, as_json: bool, summary: Callable[[Any], str], left: Callable[[Any], str]
) -> int:
    """Print each alias's run of a command that works on the live index (a skip is a notice); its exit status."""
    from reindex.cli import reporting

    results = []
    for result in runs:
        if result.skipped:
            state.say(result.error)
        else:
            print_outcome(state, result, as_json, summary, left, started=result.index is not None)
        results.append(result)
    if as_json:
        state.data(reporting.as_json(results))
    return errors.worst_status(r.exit_status for r in results)


def progress_for(state: State, no_progress: bool, as_json: bool) -> Any:
    """The progress bar factory of a run: none with --no-progress, -q or --json (and tqdm hides off a terminal)."""
    return None if (no_progress or state.quiet or as_json) else tqdm_progress


def tqdm_progress(total: int, description: str) -> Any:
    """A progress bar on stderr that shows only on a terminal."""
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="doc", unit_scale=True, disable=None, file=sys.stderr, leave=False)


@cli.command()
@names_argument
@click.option(
    "--since",
    metavar="DURATION|TIME",
    help="The rows changed since then (90s, 15m, 2h, 1d, 1w, or an ISO time) instead of since the watermark.",
)
@click.option("--all", "all_rows", is_flag=True, help="Re-send every row in place (after migrate added a field).")
@load_options
@json_option
@pass_state
def update(
    state: State,
    names: Sequence[str],
    since: str | None,
    all_rows: bool,
    errors_file: str | None,
    no_progress: bool,
    as_json: bool,
    **overrides: Any,
) -> int:
    """Re-send, in place, the documents of the rows changed since the last update or rebuild.

    Reads the rows whose last-updated field (the definition's updated_field, or its
    changed_since()) is at or after the alias's watermark, less REINDEX["UPDATE_OVERLAP"]
    seconds; writes their documents into the live index; deletes the documents of
    changed rows that left the queryset (soft-deleted, filtered out); then records
    the new watermark. With no NAME: every alias that tracks its changes. Rows
    deleted outright leave no timestamp: reindex sweep finds those.

    Holds the alias's lock: while a rebuild runs, update exits 3 (quietly with -q)
    and the rebuild's catch-up covers its rows.

    \b
    Example:
      reindex --settings mysite.settings update products
      reindex --settings mysite.settings update products --since 2h
      reindex --settings mysite.settings update products --all
    """
    from reindex import api
    from reindex.cli import reporting

    if since and all_rows:
        raise click.UsageError("--since and --all do not go together: --all re-sends every row")
    runs = api.update_each(
        *names,
        config=state.config,
        since=since,
        all_rows=all_rows,
        errors_file=errors_file,
        progress=progress_for(state, no_progress, as_json),
        handle_signals=True,
        **overrides,
    )
    return print_in_place_runs(state, runs, as_json, reporting.format_update, reporting.update_left)


@cli.command()
@names_argument
@batch_size_option
@lock_wait_option
@retry_options
@click.option(
    "--errors-file",
    type=click.Path(dir_okay=False),
    help="Write one JSON line per document that could not be deleted: alias, id, reason, error_type.",
)
@no_progress_option
@json_option
@pass_state
def sweep(
    state: State, names: Sequence[str], errors_file: str | None, no_progress: bool, as_json: bool, **overrides: Any
) -> int:
    """Delete the documents whose rows are gone or filtered out (all aliases when no NAME).

    Rows deleted outright leave no timestamp for reindex update to find. Walks the
    live index's ids page by page (--batch-size ids a page, memory bounded by it),
    looks each page's rows up with one query, and deletes the documents of the
    rows that are gone or that get_queryset() leaves out. Holds the alias's lock
    (exit 3 while a rebuild or an update runs).

    \b
    Example:
      reindex --settings mysite.settings sweep products
    """
    from reindex import api
    from reindex.cli import reporting

    runs = api.sweep_each(
        *names,
        config=state.config,
        errors_file=errors_file,
        progress=progress_for(state, no_progress, as_json),
        handle_signals=True,
        **overrides,
    )
    return print_in_place_runs(state, runs, as_json, reporting.format_sweep, reporting.sweep_left)


@cli.command()
@names_argument
@click.option(
    "--sample",
    type=click.IntRange(1),
    metavar="N",
    help="Check N random rows and N random documents (default 1000).",
)
@click.option("--full", is_flag=True, help="Check every row and every document (memory bounded by --batch-size).")
@batch_size_option
@no_progress_option
@json_option
@pass_state
def verify(
    state: State,
    names: Sequence[str],
    sample: int | None,
    full: bool,
    no_progress: bool,
    as_json: bool,
    **overrides: Any,
) -> int:
    """Compare each live index with its table: counts, missing, orphan and stale documents.

    A document is stale when prepare() builds a different one from its row now.
    Reads only. Exit status 0 when they agree, 1 on drift (a summary line per
    alias), so it can run from monitoring.

    \b
    Example:
      reindex --settings mysite.settings verify products --sample 500
      reindex --settings mysite.settings verify products --full --json
    """
    from reindex import api
    from reindex.cli import reporting

    if sample and full:
        raise click.UsageError("--sample and --full do not go together")
    progress = progress_for(state, no_progress, as_json)
    results = api.verify(*names, config=state.config, sample=sample, full=full, progress=progress, **overrides)
    if as_json:
        state.out(reporting.as_json(results))
    elif not state.quiet:
        for result in results:
            state.out(reporting.format_verify(result))
    drift = [r for r in results if not r.agrees]
    if drift and state.quiet:
        for result in drift:
            click.echo(state.redact(reporting.format_verify(result)), err=True)
    return errors.EXIT_DIFFERENCES if drift else errors.EXIT_OK


@cli.command()
@names_argument
@click.option("--loop", is_flag=True, help="Go on as a worker: poll the queue until SIGTERM (or --max-seconds).")
@click.option("--max-seconds", type=click.FloatRange(0), metavar="N", help="Stop after N seconds (between batches).")
@batch_size_option
@click.option(
    "--max-attempts",
    "queue_max_attempts",
    type=click.IntRange(1),
    help=f"Failed tries before an entry is dead (default REINDEX['QUEUE_MAX_ATTEMPTS'], {Config.queue_max_attempts}).",
)
@json_option
@pass_state
def drain(
    state: State, names: Sequence[str], loop: bool, max_seconds: float | None, as_json: bool, **overrides: Any
) -> int:
    """Send the queued changes in bulk (all aliases when no NAME): once, for cron, or as a worker with --loop.

    Claims batches of queued entries, reads their rows with get_queryset() (rows
    gone or filtered out become deletes), sends one bulk request per batch and
    removes each entry once the server confirmed its document. A failing entry is
    retried with back-off and dead after --max-attempts; the others go on. Takes no
    lock: several drainers share the queue. An alias with nothing queued prints
    nothing (unless -v). Exit status 1 when a batch could not be sent (its entries
    stay queued).

    \b
    Example:
      reindex --settings mysite.settings drain
      reindex --settings mysite.settings drain products --loop
    """
    from reindex import api
    from reindex.cli import reporting

    results = api.drain(
        *names,
        config=state.config,
        loop=loop,
        max_seconds=max_seconds,
        handle_signals=True,
        raise_on_error=False,
        **overrides,
    )
    for result in results:
        if result.claimed or result.exception is not None or state.verbose or as_json:  # an idle pass says nothing
            print_outcome(state, result, as_json, reporting.format_drain, reporting.drain_left, started=True)
    if as_json:
        state.data(reporting.as_json(results))
    return errors.worst_status(r.exit_status for r in results)


@cli.group("queue", cls=ReindexGroup)
def queue_group() -> None:
    """The change queue: what waits, dead entries put back, entries purged.

    \b
    Example:
      reindex --settings mysite.settings queue status
      reindex --settings mysite.settings queue retry products
    """


@queue_group.command("status")
@names_argument
@json_option
@pass_state
def queue_status(state: State, names: Sequence[str], as_json: bool) -> int:
    """Pending, in-flight and dead entries, and the age of the oldest change waiting (the lag).

    Reads the database only.

    \b
    Example:
      reindex --settings mysite.settings queue status products --json
    """
    from reindex import api
    from reindex.cli import reporting

    print_lines(state, api.queue_status(*names, config=state.config), reporting.format_queue_status, as_json)
    return errors.EXIT_OK


@queue_group.command("retry")
@names_argument
@json_option
@pass_state
def queue_retry(state: State, names: Sequence[str], as_json: bool) -> int:
    """Make the dead entries pending again, attempts forgotten (after fixing what failed).

    \b
    Example:
      reindex --settings mysite.settings queue retry products
    """
    from reindex import api

    print_counts(state, api.queue_retry(*names, config=state.config), "dead entries queued again", as_json)
    return errors.EXIT_OK


@queue_group.command("purge")
@names_argument
@click.option("--all", "purge_all", is_flag=True, help="Delete every entry: their changes are not sent.")
@click.option("--dead", "dead_only", is_flag=True, help="Delete the dead entries only.")
@json_option
@pass_state
def queue_purge(state: State, names: Sequence[str], purge_all: bool, dead_only: bool, as_json: bool) -> int:
    """Delete queued entries on purpose (e.g. before a rebuild that covers them).

    \b
    Example:
      reindex --settings mysite.settings queue purge products --dead
    """
    from reindex import api

    if purge_all == dead_only:
        raise click.UsageError("say what to delete: --all or --dead")
    purged = api.queue_purge(*names, dead_only=dead_only, config=state.config)
    print_counts(state, purged, "dead entries deleted" if dead_only else "entries deleted", as_json)
    return errors.EXIT_OK


@cli.group("triggers", cls=ReindexGroup)
def triggers_group() -> None:
    """PostgreSQL triggers that queue every change, raw SQL and queryset.update() included.

    \b
    Example:
      reindex --settings mysite.settings triggers install products
      reindex --settings mysite.settings triggers status
    """


@triggers_group.command("install")
@names_argument
@json_option
@pass_state
def triggers_install(state: State, names: Sequence[str], as_json: bool) -> int:
    """Install or update the triggers of each definition (all when no NAME), in one transaction.

    On its own table and on every table its watch lookups go through; triggers left
    over from an older watch are dropped. Safe to run again (e.g. after each deploy).

    \b
    Example:
      reindex --settings mysite.settings triggers install
    """
    from reindex import api
    from reindex.cli import reporting

    print_lines(state, api.triggers_install(*names, config=state.config), reporting.format_trigger_status, as_json)
    return errors.EXIT_OK


@triggers_group.command("status")
@names_argument
@json_option
@pass_state
def triggers_status(state: State, names: Sequence[str], as_json: bool) -> int:
    """Which tables have their triggers, which miss them or have an outdated one; exit 1 when any is not right.

    \b
    Example:
      reindex --settings mysite.settings triggers status products --json
    """
    from reindex import api
    from reindex.cli import reporting

    results = api.triggers_status(*names, config=state.config)
    print_lines(state, results, reporting.format_trigger_status, as_json)
    return errors.EXIT_OK if all(r.complete and r.installed for r in results) else errors.EXIT_DIFFERENCES


@triggers_group.command("remove")
@names_argument
@json_option
@pass_state
def triggers_remove(state: State, names: Sequence[str], as_json: bool) -> int:
    """Drop the triggers of each definition named, or every reindex trigger in the database when no NAME.

    \b
    Example:
      reindex --settings mysite.settings triggers remove products
    """
    from reindex import api

    print_counts(state, api.triggers_remove(*names, config=state.config), "table triggers dropped", as_json)
    return errors.EXIT_OK


def print_lines(state: State, results: Sequence[Any], line: Callable[[Any], str], as_json: bool) -> None:
    """One line per result, or the results as JSON."""
    from reindex.cli import reporting

    if as_json:
        state.data(reporting.as_json(results))
        return
    for result in results:
        state.out(line(result))


def print_counts(state: State, counts: dict[str, int], what: str, as_json: bool) -> None:
    """``alias: N what`` per alias, or the counts as JSON."""
    from reindex.cli import reporting

    if as_json:
        state.data(reporting.as_json(counts))
        return
    for alias, count in counts.items():
        state.out(f"{alias}: {count} {what}")


@cli.command()
@names_argument
@json_option
@pass_state
def status(state: State, names: Sequence[str], as_json: bool) -> int:
    """Show what each alias serves: the live index, its count, the indexes kept, the lock.

    The first line names the server (distribution, version, address).

    \b
    Example:
      reindex --settings mysite.settings status products --json
    """
    from reindex import api
    from reindex.cli import reporting

    statuses = api.status(*names, config=state.config)
    if as_json:
        state.data(reporting.as_json(statuses))
        return errors.EXIT_OK
    if statuses:
        state.out(reporting.format_server(statuses[0]))
    for st in statuses:
        for line in reporting.format_status(st):
            state.out(line)
    return errors.EXIT_OK


@cli.command("diff")
@names_argument
@json_option
@pass_state
def diff_command(state: State, names: Sequence[str], as_json: bool) -> int:
    """Compare each definition in code with the live index behind its alias (all when no NAME).

    Shows every field, field parameter and declared setting that differs, whether
    it can be applied in place (reindex migrate) or needs a rebuild, and live fields
    that came from dynamic mapping. Exit status like diff(1): 0 no differences,
    1 differences (or not built), 2 trouble.

    \b
    Example:
      reindex --settings mysite.settings diff products --json
    """
    from reindex import api
    from reindex.cli import reporting

    reports = api.diff(*names, config=state.config)
    if as_json:
        state.data(reporting.as_json(reports))
    elif not state.quiet:
        for report in reports:
            for line in reporting.format_drift(report):
                state.out(line)
    different = any(r.differences or not r.built for r in reports)
    return errors.EXIT_DIFFERENCES if different else errors.EXIT_OK


@cli.command("migrate")
@alias_argument
@dry_run_option
@json_option
@pass_state
def migrate_command(state: State, name: str, dry_run: bool, as_json: bool) -> int:
    """Apply the in-place differences of NAME to its live index, without a rebuild.

    Adds new fields and multi-fields, updatable field parameters and dynamic
    settings. Refuses (exit 1, nothing written), listing them, when any difference
    needs a rebuild.

    \b
    Example:
      reindex --settings mysite.settings migrate products --dry-run
    """
    from reindex import api
    from reindex.cli import reporting

    try:
        results = api.migrate(name, dry_run=dry_run, config=state.config)
    except errors.NeedsRebuild as exc:
        report_error(state, exc, detail="\n".join(f"  {reporting.describe(d)}" for d in exc.differences))
        return exc.exit_status
    if as_json:
        state.data(reporting.as_json(results))
    elif not state.quiet:
        for result in results:
            for line in reporting.format_migrate(result):
                state.out(line)
    return errors.EXIT_OK


@cli.command()
@alias_argument
@json_option
@pass_state
def rollback(state: State, name: str, as_json: bool) -> int:
    """Move the alias back to the most recent previous index kept by --keep.

    One atomic request; refuses (exit 1) when no previous index was kept.

    \b
    Example:
      reindex --settings mysite.settings rollback products
    """
    from reindex import api
    from reindex.cli import reporting

    result = api.rollback(name, config=state.config)
    if as_json:
        state.data(reporting.as_json(result))
    elif not state.quiet:
        state.out(reporting.format_rollback(result))
    return errors.EXIT_OK


@cli.command()
@alias_argument
@click.option("--keep", type=click.IntRange(0), required=True, help="Previous indexes to keep for rollback.")
@json_option
@pass_state
def prune(state: State, name: str, keep: int, as_json: bool) -> int:
    """Delete the alias's older indexes this tool built, except the KEEP most recent.

    Also deletes partial indexes left by a killed run. Never touches the live
    index or indexes without this tool's marker.

    \b
    Example:
      reindex --settings mysite.settings prune products --keep 1
    """
    from reindex import api
    from reindex.cli import reporting

    result = api.prune(name, keep, config=state.config)
    if as_json:
        state.data(reporting.as_json(result))
    elif not state.quiet:
        state.out(reporting.format_prune(result))
    return errors.EXIT_OK


@cli.command()
@alias_argument
@click.option("--force", is_flag=True, help="Remove the lock even while its holder looks alive (that run then fails).")
@json_option
@pass_state
def unlock(state: State, name: str, force: bool, as_json: bool) -> int:
    """Remove the alias's lock that a dead run left (kill -9, a crashed host).

    Says what it removes: holder, start, heartbeat age. Refuses (exit 1) while the
    holder looks alive: a heartbeat younger than LOCK_TTL and a process not known to
    be gone; --force removes it anyway. An alias not locked exits 0.

    \b
    Example:
      reindex --settings mysite.settings unlock products
    """
    from reindex import api
    from reindex.cli import reporting

    try:
        result = api.unlock(name, force=force, config=state.config)
    except errors.LockHeld as exc:
        if as_json:
            state.data(reporting.as_json(exc.result))
        held = exc.result.lock
        report_error(state, exc, detail=f"  locked by {reporting.format_lock(held)}" if held else None)
        return exc.exit_status
    if as_json:
        state.data(reporting.as_json(result))
    else:
        state.out(reporting.format_unlock(result))
    return errors.EXIT_OK


def run(args: Sequence[str] | None = None, prog_name: str = "reindex") -> int:
    """Run the CLI and return its exit status instead of exiting."""
    try:
        status = cli.main(args=list(args) if args is not None else None, prog_name=prog_name, standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        return errors.EXIT_CONFIG
    except click.exceptions.Abort:
        click.echo("reindex: aborted", err=True)
        return errors.EXIT_FAILED
    return int(status or 0)


def main() -> None:
    """Console-script entry point."""
    sys.exit(run())
