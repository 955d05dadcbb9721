"""Printing what the core returns: summary lines, one error line per failed run, JSON, progress bars."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import Any

from reindex import errors
from reindex.cli.group import State, report_error


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
