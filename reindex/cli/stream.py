"""The event stream's commands: stream, slot setup|status|drop."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from reindex import errors
from reindex.cli.group import ReindexGroup, State, pass_state
from reindex.cli.options import batch_size_option, command, json_option, names_argument
from reindex.cli.output import print_lines, print_outcome


@command()
@names_argument
@click.option("--once", is_flag=True, help="Stop once the slots reach where the log ended at the start.")
@click.option("--max-seconds", type=click.FloatRange(0), metavar="N", help="Stop after N seconds (between rounds).")
@batch_size_option
@json_option
@pass_state
def stream(
    state: State, names: Sequence[str], once: bool, max_seconds: float | None, as_json: bool, **overrides: Any
) -> int:
    """Follow PostgreSQL's log (all aliases with watch when no NAME) and send what changed, until SIGTERM.

    Reads each alias's replication slot (`reindex slot setup` creates it), sends the
    documents the committed changes touch in bulk, and only then moves the slot on.
    Rejected documents go to the change queue (retried, dead after max attempts),
    which the stream drains too. An outage of the database or the search server is
    logged and waited out (with --once: exit 1, the slot stays). Exit 3 when another
    `reindex stream` follows a slot.

    \b
    Example:
      reindex --settings mysite.settings stream
      reindex --settings mysite.settings stream products --once --json
    """
    from reindex import api
    from reindex.cli import reporting

    results = api.stream(
        *names,
        config=state.config,
        once=once,
        max_seconds=max_seconds,
        handle_signals=True,
        raise_on_error=False,
        **overrides,
    )
    for result in results:
        if result.transactions or result.exception is not None or state.verbose or as_json:
            print_outcome(state, result, as_json, reporting.format_stream, reporting.stream_left, started=True)
    if as_json:
        state.data(reporting.as_json(results))
    return errors.worst_status(r.exit_status for r in results)


@click.group("slot", cls=ReindexGroup)
def slot_group() -> None:
    """The replication slots `reindex stream` reads: set up, watched, dropped.

    \b
    Example:
      reindex --settings mysite.settings slot setup products
      reindex --settings mysite.settings slot status
    """


@slot_group.command("setup")
@names_argument
@json_option
@pass_state
def slot_setup(state: State, names: Sequence[str], as_json: bool) -> int:
    """Create (or bring up to date) the slot and publication of each alias (all with watch when no NAME).

    Needs wal_level = logical and a role with REPLICATION. The slot starts at the
    log's current position. Safe to run again (e.g. after each deploy).

    \b
    Example:
      reindex --settings mysite.settings slot setup
    """
    from reindex import api
    from reindex.cli import reporting

    print_lines(state, api.slot_setup(*names, config=state.config), reporting.format_slot_status, as_json)
    return errors.EXIT_OK


@slot_group.command("status")
@names_argument
@json_option
@pass_state
def slot_status(state: State, names: Sequence[str], as_json: bool) -> int:
    """Each slot's lag and the WAL it makes PostgreSQL keep; exit 1 when one is missing or past a threshold.

    Thresholds: REINDEX['STREAM_MAX_LAG'] (seconds) and REINDEX['STREAM_MAX_RETAINED']
    (megabytes): a stopped consumer makes PostgreSQL keep WAL until the disk is full.

    \b
    Example:
      reindex --settings mysite.settings slot status --json
    """
    from reindex import api
    from reindex.cli import reporting

    results = api.slot_status(*names, config=state.config)
    print_lines(state, results, reporting.format_slot_status, as_json)
    for status in results:
        for problem in status.problems:
            state.console.warning(f"{status.alias}: {problem}")
    return errors.EXIT_OK if all(status.healthy for status in results) else errors.EXIT_FAILED


@slot_group.command("drop")
@names_argument
@json_option
@pass_state
def slot_drop(state: State, names: Sequence[str], as_json: bool) -> int:
    """Drop the slot and publication of each alias (all with watch when no NAME), and what setup changed.

    Refused (exit 2) while a `reindex stream` reads the slot.

    \b
    Example:
      reindex --settings mysite.settings slot drop products
    """
    from reindex import api
    from reindex.cli import reporting

    dropped = api.slot_drop(*names, config=state.config)
    if as_json:
        state.data(reporting.as_json(dropped))
    else:
        for alias in dropped:
            state.out(f"{alias}: slot and publication dropped")
    return errors.EXIT_OK
