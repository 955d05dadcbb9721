"""The commands that load or check an alias: rebuild, update, sweep, verify."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import click

from reindex import errors
from reindex.cli.group import State, pass_state
from reindex.cli.options import (
    batch_size_option,
    command,
    dry_run_option,
    json_option,
    keep_option,
    load_options,
    lock_wait_option,
    names_argument,
    no_progress_option,
    retry_options,
)
from reindex.cli.output import print_in_place_runs, print_rebuild, progress_for
from reindex.config import Config


@command()
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


@command()
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


@command()
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


@command()
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
