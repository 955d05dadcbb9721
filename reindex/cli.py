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
from typing import Any

import click

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

            self._connection = Connection(self.boot(), self.es_url)
        return self._connection

    def client(self) -> Any:
        """The client, after checking the server answers (exit 2 if not)."""
        self.connection.check()
        return self.connection.client()

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
    message = str(exc)
    if state is not None and state._connection is not None:
        message = state.connection.redact(message)
    click.echo(f"reindex: error: {message}", err=True)
    if state is not None and state.verbose:
        click.echo("".join(traceback.format_exception(exc)).rstrip(), err=True)


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
    ctx.obj = State(settings=settings, pythonpath=pythonpath, es_url=es_url, verbose=verbose, quiet=quiet)


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


@cli.command()
@names_argument
@click.option("--batch-size", type=click.IntRange(1), help="Rows per database query and documents per bulk request.")
@click.option("--max-errors", type=click.IntRange(0), help="Rows that may fail before the run aborts (default 0).")
@click.option("--keep", type=click.IntRange(0), help="Previous indexes to keep for rollback (default 0).")
@click.option("--no-progress", is_flag=True, help="No progress bar, even on a terminal.")
@dry_run_option
@json_option
@pass_state
def rebuild(
    state: State,
    names: Sequence[str],
    batch_size: int | None,
    max_errors: int | None,
    keep: int | None,
    no_progress: bool,
    dry_run: bool,
    as_json: bool,
) -> int:
    """Rebuild aliases from the database into fresh indexes (all when no NAME).

    Builds <alias>-<timestamp>, loads it, checks its count, moves the alias to it
    in one atomic request and drops the old index. A failed run leaves the alias
    where it was. With --dry-run, print the plan (new index, rows, mapping diff,
    indexes to delete) and write nothing.

    \b
    Example:
      reindex --settings mysite.settings rebuild products --keep 1
    """
    from reindex.rebuild import RebuildOptions
    from reindex.rebuild import rebuild as run_rebuild

    definitions = state.registry.select(names)
    config = state.boot()
    if dry_run:
        return print_plans(state, definitions, config["KEEP"] if keep is None else keep, as_json)
    options = RebuildOptions(
        batch_size=batch_size or config["BATCH_SIZE"],
        max_errors=config["MAX_ERRORS"] if max_errors is None else max_errors,
        keep=config["KEEP"] if keep is None else keep,
    )
    client = state.client()
    progress = None if (no_progress or state.quiet or as_json) else tqdm_progress
    reports, status = [], errors.EXIT_OK
    for definition in definitions:
        try:
            result = run_rebuild(definition, client, options, progress)
        except errors.RunFailed as exc:
            status = max(status, exc.exit_status)
            result = exc.result  # type: ignore[assignment]
            click.echo(f"reindex: {state.connection.redact(str(exc))}", err=True)
            if result is not None:
                _print_failures(state, result)
                state.say(f"{definition.alias}: alias left on {', '.join(_live(result)) or 'nothing'}")
        else:
            if not as_json and not state.quiet:
                click.echo(format_rebuild(result))
                _print_failures(state, result)
        if result is not None:
            reports.append(result.as_dict())
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
        click.echo(f"  would delete: {', '.join(plan.delete) or 'nothing'}")
        if plan.keep:
            click.echo(f"  would keep: {', '.join(plan.keep)}")
    return errors.EXIT_OK


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
    """Show what each alias serves: the live index, its count, the indexes kept.

    \b
    Example:
      reindex --settings mysite.settings status products --json
    """
    from reindex.status import alias_status

    definitions = state.registry.select(names)
    client = state.client()
    statuses = [alias_status(client, d) for d in definitions]
    if as_json:
        click.echo(json.dumps([s.as_dict() for s in statuses], indent=2))
        return errors.EXIT_OK
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
        return f"{st.alias}: not built"
    lines = [f"{st.alias}: live {', '.join(st.live)} ({st.count} documents){_CODE_MATCH[st.matches_code]}"]
    for info in st.indexes:
        marks = "live" if info.live else "kept"
        lines.append(f"  {info.name}\t{marks}\tcreated {info.created or '?'}\t{info.count} documents")
    return "\n".join(lines)


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
