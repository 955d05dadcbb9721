"""The options several commands share, defined once."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import click

from reindex.cli.group import ExampleCommand
from reindex.config import Config


def json_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--json", "as_json", is_flag=True, help="Print the report as JSON on stdout, nothing else.")(f)


def dry_run_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--dry-run", is_flag=True, help="Write nothing to the server; print what would be done.")(f)


def names_argument(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.argument("names", nargs=-1, metavar="[NAME]...")(f)


def alias_argument(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.argument("name", metavar="NAME")(f)


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


#: ``@command()``: a click command whose help examples name the program as it was run.
command = functools.partial(click.command, cls=ExampleCommand)
