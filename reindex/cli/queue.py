"""The change queue's commands: drain, queue status|retry|purge, triggers install|status|remove."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from reindex import errors
from reindex.cli.group import ReindexGroup, State, pass_state
from reindex.cli.options import batch_size_option, command, json_option, names_argument
from reindex.cli.output import print_counts, print_lines, print_outcome
from reindex.config import Config


@command()
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


@click.group("queue", cls=ReindexGroup)
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


@click.group("triggers", cls=ReindexGroup)
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
