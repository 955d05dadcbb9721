"""The ``reindex`` command line: parse options, boot Django, call the core, print.

Exit statuses: 0 success; 1 a run failed and the alias was left alone; 2 usage or
configuration error; 3 skipped because another run holds the lock.
"""

from __future__ import annotations

import contextlib
import json
import sys
import traceback
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from reindex.rebuild import RebuildOptions

from reindex import errors
from reindex.errors import ReindexError


@dataclass
class State:
    """What the global options said; Django and the client are set up on first use."""

    settings: str | None = None
    pythonpath: str | None = None
    es_url: str | None = None
    verbose: int = 0
    quiet: bool = False
    _config: dict[str, Any] | None = None
    _registry: Any = None
    _connection: Any = None
    _extra: dict[str, Any] = field(default_factory=dict)

    def boot(self) -> dict[str, Any]:
        if self._config is None:
            from reindex.config import reindex_settings, setup_django

            setup_django(self.settings, self.pythonpath)
            self._config = reindex_settings()
        return self._config

    @property
    def registry(self) -> Any:
        if self._registry is None:
            from reindex.definitions import discover

            self._registry = discover(self.boot())
        return self._registry

    @property
    def connection(self) -> Any:
        if self._connection is None:
            from reindex.connection import Connection

            config = self.boot()
            self._connection = Connection(config, self.es_url)
            if not config.get("VERIFY_CERTS", True):
                click.echo("reindex: warning: TLS certificate verification is off (REINDEX['VERIFY_CERTS'])", err=True)
        return self._connection

    def client(self) -> Any:
        """The client, after checking the server answers (exit 2 if not)."""
        self.connection.check()
        return self.connection.client()

    def override(self, key: str, value: Any) -> None:
        """Set a ``REINDEX`` key from a command-line flag, before the client is built."""
        assert self._connection is None, "flags that shape the client must be applied before it is built"
        self.boot()[key] = value

    def redact(self, text: str) -> str:
        """``text`` without secrets (URL credentials only, before the connection is known)."""
        if self._connection is not None:
            return str(self.connection.redact(text))
        from reindex.connection import redact

        return redact(text, [])

    def say(self, message: str) -> None:
        """A diagnostic line on stderr, unless --quiet."""
        if not self.quiet:
            click.echo(message, err=True)


pass_state = click.make_pass_decorator(State)


def json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout, nothing else.")(f)


def dry_run_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--dry-run", is_flag=True, help="Write nothing to the server; print what would be done.")(f)


def names_argument(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.argument("names", nargs=-1, metavar="[NAME]...")(f)


class ReindexGroup(click.Group):
    """Maps ReindexError to a one-line message and its exit status."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            status = super().invoke(ctx)
        except ReindexError as exc:
            report_error(ctx.find_object(State), exc)
            ctx.exit(exc.exit_status)
        ctx.exit(int(status or 0))


def report_error(state: State | None, exc: BaseException) -> None:
    """``reindex: error: <one line>`` on stderr, secrets redacted; -v adds the traceback."""
    message = state.redact(str(exc)) if state is not None else str(exc)
    click.echo(f"reindex: error: {message}", err=True)
    if state is not None and state.verbose:
        click.echo(state.redact("".join(traceback.format_exception(exc))).rstrip(), err=True)


@click.group(cls=ReindexGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--settings", metavar="MODULE", help="Django settings module (else $DJANGO_SETTINGS_MODULE).")
@click.option("--pythonpath", metavar="DIR", type=click.Path(file_okay=False), help="Directory to add to sys.path.")
@click.option("--es-url", metavar="URL", help="Search server URL (else $REINDEX_ES_URL, else REINDEX['HOSTS']).")
@click.option("-v", "--verbose", count=True, help="More detail; with errors, the traceback.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing but errors.")
@click.version_option(package_name="reindex")
@click.pass_context
def cli(
    ctx: click.Context, settings: str | None, pythonpath: str | None, es_url: str | None, verbose: int, quiet: bool
) -> None:
    """Keep a Django site's Elasticsearch aliases whole: rebuild them with no gap in search.

    \b
    Example:
      reindex --settings mysite.settings rebuild products
    """
    from reindex import diagnostics

    ctx.obj = state = State(settings=settings, pythonpath=pythonpath, es_url=es_url, verbose=verbose, quiet=quiet)
    diagnostics.configure(verbose, quiet, state.redact)


@cli.command("list")
@json_option
@pass_state
def list_command(state: State, as_json: bool) -> int:
    """List the registered index definitions.

    \b
    Example:
      reindex --settings mysite.settings list
    """
    rows = [{"alias": d.alias, "definition": d.path, "models": d.source_models()} for d in state.registry]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
    elif not rows:
        state.say("no index definitions found (add an indexes module to an app, or REINDEX['INDEXES'])")
    else:
        for row in rows:
            click.echo(f"{row['alias']}\t{', '.join(row['models'])}\t{row['definition']}")
    return errors.EXIT_OK


def keep_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--keep", type=click.IntRange(0), help="Previous indexes to keep for rollback (default 0).")(f)


def retry_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = click.option(
        "--retry-backoff",
        type=click.FloatRange(0, min_open=True),
        metavar="SECONDS",
        help="Wait before the first retry, doubling each time (default REINDEX['RETRY_BACKOFF'], 0.5).",
    )(f)
    return click.option(
        "--max-retries",
        type=click.IntRange(0),
        help="Retries of a request the server answers 429/502/503/504 or drops (default REINDEX['MAX_RETRIES'], 8).",
    )(f)


@cli.command()
@names_argument
@click.option("--batch-size", type=click.IntRange(1), help="Rows per database query and documents per bulk request.")
@click.option("--max-errors", type=click.IntRange(0), help="Rows that may fail before the run aborts (default 0).")
@keep_option
@click.option(
    "--min-ratio",
    type=click.FloatRange(0, 1),
    help="Refuse to swap when the new index holds fewer than this fraction of the live documents (default 0.5).",
)
@click.option("--force", is_flag=True, help="Swap even when --min-ratio refuses.")
@click.option(
    "--replace-existing-index",
    is_flag=True,
    help="When the alias name is a concrete index, remove it in the same atomic request that adds the alias.",
)
@click.option(
    "--errors-file",
    type=click.Path(dir_okay=False),
    help="Write one JSON line per failed row: alias, id, reason, error_type.",
)
@retry_options
@click.option(
    "--workers",
    type=click.IntRange(1),
    help="Processes that build and send documents, each its own pk ranges (default 1).",
)
@click.option("--no-progress", is_flag=True, help="No progress bar, even on a terminal.")
@dry_run_option
@json_option
@pass_state
def rebuild(
    state: State,
    names: Sequence[str],
    errors_file: str | None,
    no_progress: bool,
    dry_run: bool,
    as_json: bool,
    **flags: Any,
) -> int:
    """Rebuild aliases from the database into fresh indexes (all when no NAME).

    Builds <alias>-<timestamp>, loads it, checks its count, moves the alias to it
    in one atomic request and drops the old index. A failed run leaves the alias
    where it was. With --dry-run, print the plan (new index, rows, mapping diff,
    indexes to delete) and write nothing.

    One run per alias at a time (a lock in the search server): a run that finds
    the alias locked exits 3. SIGTERM/SIGINT delete the partial index and exit 1.

    \b
    Example:
      reindex --settings mysite.settings rebuild products --keep 1
      reindex --settings mysite.settings rebuild products --errors-file failed.jsonl
      reindex --settings mysite.settings rebuild products --workers 2
    """
    from reindex.failure_log import FailureLog
    from reindex.interrupts import signals_raise_interrupted

    definitions = state.registry.select(names)
    if dry_run:
        keep = flags.get("keep")
        return print_plans(state, definitions, state.boot()["KEEP"] if keep is None else keep, as_json)
    options = rebuild_options(state, flags)
    client = state.client()
    progress = None if (no_progress or state.quiet or as_json) else tqdm_progress
    reports, status = [], errors.EXIT_OK
    log = FailureLog(errors_file, state.connection.redact) if errors_file else None
    with contextlib.nullcontext() if log is None else log, signals_raise_interrupted():
        for definition in definitions:
            options.on_failure = None if log is None else log.for_alias(definition.alias)
            report, run_status, stop = rebuild_one(state, definition, client, options, progress, as_json)
            status = max(status, run_status)
            if report is not None:
                reports.append(report)
            if stop:
                break
    if as_json:
        click.echo(state.connection.redact(json.dumps(reports, indent=2)))
    return status


def print_plans(state: State, definitions: Sequence[Any], keep: int, as_json: bool) -> int:
    """``rebuild --dry-run``: the plan of each rebuild, nothing written."""
    from reindex.drift import format_drift
    from reindex.plan import plan_rebuild

    client = state.client()
    with server_trouble():
        plans = [plan_rebuild(client, d, keep) for d in definitions]
    if as_json:
        click.echo(json.dumps([p.as_dict() for p in plans], indent=2))
        return errors.EXIT_OK
    for plan in plans:
        click.echo(f"{plan.alias}: would create {plan.new_index} from {plan.rows} rows")
        click.echo(f"  alias now on: {', '.join(plan.live) or 'nothing (not built)'}")
        for report in plan.drift:
            for line in format_drift(report):
                click.echo(f"  {line}")
        deleted = [f"{n} (abandoned build)" if n in plan.abandoned else n for n in plan.delete]
        click.echo(f"  would delete: {', '.join(deleted) or 'nothing'}")
        if plan.keep:
            click.echo(f"  would keep: {', '.join(plan.keep)}")
    return errors.EXIT_OK


def rebuild_options(state: State, flags: dict[str, Any]) -> RebuildOptions:
    """RebuildOptions from the command's flags over ``REINDEX`` settings."""
    from reindex.rebuild import RebuildOptions

    config = state.boot()
    given = {key: value for key, value in flags.items() if value is not None}
    for flag, key in (("max_retries", "MAX_RETRIES"), ("retry_backoff", "RETRY_BACKOFF")):
        if flag in given:
            state.override(key, given[flag])
    return RebuildOptions(
        batch_size=given.get("batch_size") or config["BATCH_SIZE"],
        max_errors=given.get("max_errors", config["MAX_ERRORS"]),
        keep=given.get("keep", config["KEEP"]),
        min_ratio=given.get("min_ratio", config["MIN_RATIO"]),
        force=bool(given.get("force")),
        replace_existing_index=bool(given.get("replace_existing_index")),
        lock_ttl=float(config["LOCK_TTL"]),
        lock_index=config["LOCK_INDEX"],
        max_retries=int(config["MAX_RETRIES"]),
        retry_backoff=float(config["RETRY_BACKOFF"]),
        retry_backoff_max=float(config["RETRY_BACKOFF_MAX"]),
        workers=given.get("workers") or config["WORKERS"],
        worker_start=config["WORKER_START"],
        es_url=state.es_url,
    )


def rebuild_one(
    state: State, definition: Any, client: Any, options: RebuildOptions, progress: Any, as_json: bool
) -> tuple[dict[str, Any] | None, int, bool]:
    """Rebuild one alias, print what happened; return its report, exit status and whether to stop."""
    from reindex.interrupts import Interrupted
    from reindex.locking import Locked
    from reindex.rebuild import rebuild as run_rebuild

    try:
        result = run_rebuild(definition, client, options, progress)
    except Locked as exc:
        click.echo(f"reindex: {exc}", err=True)
        skipped = {"alias": definition.alias, "definition": definition.path, "skipped": "locked", "error": str(exc)}
        return skipped, exc.exit_status, False
    except errors.RunFailed as exc:
        result = exc.result  # type: ignore[assignment]
        click.echo(f"reindex: {state.connection.redact(str(exc))}", err=True)
        stop = isinstance(exc, Interrupted)
        if result is None:
            return None, exc.exit_status, stop
        _print_notices(state, result)
        _print_failures(state, result)
        state.say(f"{definition.alias}: alias left on {', '.join(_live(result)) or 'nothing'}")
        return result.as_dict(), exc.exit_status, stop
    _print_notices(state, result)
    if not as_json and not state.quiet:
        click.echo(format_rebuild(result))
        _print_failures(state, result)
    return result.as_dict(), errors.EXIT_OK, False


_TAKEOVER_REASONS = {
    "process_gone": " (its process is gone)",
    "heartbeat_expired": " (no heartbeat within the lock's TTL)",
}


def _print_notices(state: State, result: Any) -> None:
    if result.lock_taken_over_from:
        why = _TAKEOVER_REASONS.get(result.lock_taken_over_because, "")
        state.say(f"{result.alias}: took over a stale lock held by {result.lock_taken_over_from}{why}")
    if result.abandoned_dropped:
        state.say(f"{result.alias}: deleted abandoned partial indexes {', '.join(result.abandoned_dropped)}")


def _live(result: Any) -> list[str]:
    return list(result.old_indexes) if not result.swapped else [result.new_index]


def _print_failures(state: State, result: Any) -> None:
    shown = result.failures if state.verbose else result.failures[:10]
    for failure in shown:
        click.echo(f"  failed row {failure.id}: {failure.reason}", err=True)
    if result.failed > len(shown):
        click.echo(f"  ... and {result.failed - len(shown)} more failed rows", err=True)


def format_rebuild(result: Any) -> str:
    """One human line for a finished rebuild."""
    line = (
        f"{result.alias}: {result.indexed} indexed, {result.failed} failed of {result.rows_read} rows "
        f"in {result.seconds:.1f}s; alias -> {result.new_index}"
    )
    if result.old_indexes:
        line += f" (was {', '.join(result.old_indexes)})"
    if result.dropped:
        line += f"; dropped {', '.join(result.dropped)}"
    if result.kept:
        line += f"; kept {', '.join(result.kept)}"
    if result.replaced_index:
        line += f"; replaced the concrete index {result.replaced_index}"
    if result.duplicates:
        line += f"; {result.duplicates} duplicate document ids (a later row replaced an earlier one)"
    return line


def tqdm_progress(total: int, description: str) -> Any:
    """A progress bar on stderr that shows only on a terminal."""
    from tqdm import tqdm

    return tqdm(total=total, desc=description, unit="doc", unit_scale=True, disable=None, file=sys.stderr, leave=False)


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
    from reindex.status import alias_status, server_info

    definitions = state.registry.select(names)
    client = state.client()
    server, config = server_info(client), state.boot()
    statuses = [
        alias_status(client, d, config["LOCK_INDEX"], server=server, lock_ttl=float(config["LOCK_TTL"]))
        for d in definitions
    ]
    if as_json:
        click.echo(json.dumps([s.as_dict() for s in statuses], indent=2))
        return errors.EXIT_OK
    click.echo(f"server: {server.distribution} {server.version} at {server.url}")
    for st in statuses:
        click.echo(format_status(st))
    return errors.EXIT_OK


_CODE_MATCH = {
    True: "; built from the definition in code",
    False: "; built from a different definition (see reindex diff)",
    None: "; no fingerprint of its definition recorded",
}


def format_status(st: Any) -> str:
    """Human lines for one alias status."""
    if st.concrete:
        return f"{st.alias}: a concrete index (not an alias) with {st.count} documents"
    if not st.built:
        lines = [f"{st.alias}: not built"]
    else:
        lines = [f"{st.alias}: live {', '.join(st.live)} ({st.count} documents){_CODE_MATCH[st.matches_code]}"]
    for info in st.indexes:
        marks = "live" if info.live else "building" if info.meta.get("building") is True else "kept"
        lines.append(f"  {info.name}\t{marks}\tcreated {info.created or '?'}\t{info.count} documents")
    if st.lock is not None:
        lines.append(f"  locked by {format_lock(st.lock)}")
    return "\n".join(lines)


def format_lock(lock: Any) -> str:
    """``web2:4242 since ... (heartbeat 12s ago; stale in 288s)``: who holds a lock, and until when."""
    holder = lock.holder
    if lock.holder_gone:
        staleness = "holder's process is gone: stale"
    elif lock.stale:
        staleness = "stale"
    else:
        staleness = f"stale in {lock.stale_in:.0f}s"
    return (
        f"{holder.host}:{holder.pid} since {holder.as_source()['started_at']}"
        f" (heartbeat {lock.heartbeat_age:.0f}s ago; {staleness})"
    )


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
    from reindex.drift import drift, format_drift

    definitions = state.registry.select(names)
    client = state.client()
    with server_trouble():
        reports = [report for d in definitions for report in drift(client, d)]
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in reports], indent=2))
    elif not state.quiet:
        for report in reports:
            for line in format_drift(report):
                click.echo(line)
    different = any(r.differences or not r.built for r in reports)
    return errors.EXIT_DIFFERENCES if different else errors.EXIT_OK


@contextlib.contextmanager
def server_trouble() -> Iterator[None]:
    """Turn an unexpected answer of the server into a ConfigurationError (exit 2)."""
    from elasticsearch import ApiError, TransportError

    try:
        yield
    except (ApiError, TransportError) as exc:
        raise errors.ConfigurationError(f"the search server failed: {exc}") from exc


@cli.command("migrate")
@click.argument("name")
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
    from reindex.drift import describe
    from reindex.migrate import NeedsRebuild, migrate

    [definition] = state.registry.select([name])
    client = state.client()
    try:
        with server_trouble():
            results = migrate(client, definition, dry_run=dry_run)
    except NeedsRebuild as exc:
        for difference in exc.differences:
            click.echo(f"  {describe(difference)}", err=True)
        raise
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in results], indent=2))
    elif not state.quiet:
        for result in results:
            click.echo(result.summary())
            for difference in result.applied:
                click.echo(f"  {describe(difference)}")
    return errors.EXIT_OK


def alias_argument(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.argument("name", metavar="NAME")(f)


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
    from reindex.retention import rollback as run_rollback

    definition = state.registry.get(name)
    config = state.boot()
    result = run_rollback(state.client(), definition.alias, float(config["LOCK_TTL"]), config["LOCK_INDEX"])
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    elif not state.quiet:
        was = ", ".join(result.from_indexes)
        click.echo(f"{result.alias}: alias -> {result.to_index} ({result.count} documents; was {was})")
    return errors.EXIT_OK


@cli.command()
@alias_argument
@click.option("--keep", type=click.IntRange(0), required=True, help="Previous indexes to keep for rollback.")
@json_option
@pass_state
def prune(state: State, name: str, keep: int, as_json: bool) -> int:
    """Delete the alias's older indexes this tool built, but the KEEP most recent.

    Also deletes partial indexes left by a killed run. Never touches the live
    index or indexes without this tool's marker.

    \b
    Example:
      reindex --settings mysite.settings prune products --keep 1
    """
    from reindex.retention import prune as run_prune

    definition = state.registry.get(name)
    config = state.boot()
    result = run_prune(state.client(), definition.alias, keep, float(config["LOCK_TTL"]), config["LOCK_INDEX"])
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    elif not state.quiet:
        dropped, kept = ", ".join(result.dropped) or "nothing", ", ".join(result.kept) or "nothing"
        click.echo(f"{result.alias}: dropped {dropped}; kept {kept}")
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
    from reindex.locking import LockHeld
    from reindex.locking import unlock as run_unlock

    definition = state.registry.get(name)
    config = state.boot()
    try:
        result = run_unlock(
            state.client(), definition.alias, float(config["LOCK_TTL"]), config["LOCK_INDEX"], force=force
        )
    except LockHeld as exc:
        if as_json:
            click.echo(json.dumps(exc.result.as_dict(), indent=2))
        if exc.result.lock is not None:
            click.echo(f"  locked by {format_lock(exc.result.lock)}", err=True)
        raise
    if as_json:
        click.echo(json.dumps(result.as_dict(), indent=2))
    elif not state.quiet:
        forced = " (forced)" if result.forced else ""
        removed = f"removed the lock held by {format_lock(result.lock)}{forced}" if result.lock else "not locked"
        click.echo(f"{result.alias}: {removed}")
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
