"""The commands about the indexes behind the aliases: list, status, diff, migrate, rollback, prune, unlock."""

from __future__ import annotations

from collections.abc import Sequence

import click

from reindex import errors
from reindex.cli.group import State, pass_state, report_error
from reindex.cli.options import alias_argument, command, dry_run_option, json_option, names_argument


@command("list")
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


@command()
@names_argument
@json_option
@pass_state
def status(state: State, names: Sequence[str], as_json: bool) -> int:
    """Show what each alias serves: the live index, its count, the indexes kept, the lock.

    The first line names the server (distribution, version, address). An alias that
    `reindex stream` follows shows its slot: the oldest change not yet sent, the WAL kept.

    \b
    Example:
      reindex --settings mysite.settings status products --json
    """
    from reindex import api
    from reindex.cli import reporting

    statuses = api.status(*names, config=state.config)
    slots = api.slots_of(*names, config=state.config)  # the aliases `reindex stream` follows
    if as_json:
        data = [{**reporting.to_json(st), "slot": reporting.to_json(slots.get(st.alias))} for st in statuses]
        state.data(reporting.as_json(data))
        return errors.EXIT_OK
    if statuses:
        state.out(reporting.format_server(statuses[0]))
    for st in statuses:
        for line in reporting.format_status(st):
            state.out(line)
        if st.alias in slots:
            state.out("  stream: " + reporting.describe_slot(slots[st.alias]))
    return errors.EXIT_OK


@command("diff")
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


@command("migrate")
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


@command()
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


@command()
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


@command()
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
