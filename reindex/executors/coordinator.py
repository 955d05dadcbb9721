"""Who loads a build's ranges: this process, worker processes, or the site's Celery workers.

``load()`` splits the rows at primary-key quantiles and records the ranges in
the search server (``ranges.py``), or, resuming, reads back those a killed run
recorded; it merges the ranges done already and has an executor load the others:

- ``local``: this process, range after range (``local.py``);
- ``processes``: ``config.workers`` worker processes on this machine (``parallel.py``);
- ``celery``: one Celery task per range, run by the site's workers on any machine
  (``celery.py``, imported only when asked for).

Wherever a range runs, ``load_range()`` loads it and records its result, and this
coordinator merges that result by range number, once.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import closing, nullcontext
from dataclasses import dataclass, field
from typing import Any

from reindex.config import Config
from reindex.definitions.definition import IndexDefinition
from reindex.errors import ConfigurationError, error_named
from reindex.executors.local import Job, run_local
from reindex.executors.ranges import DONE, BuildState, RangeResult, pk_ranges, range_count
from reindex.pipeline.loading import FailureCallback, LoadCounts, ProgressFactory, check_failures
from reindex.server.sending import BulkOptions

#: Loads the ranges ``numbers`` of a job's build: ``run(job, numbers)``.
Executor = Callable[[Job, list[int]], None]


def load(
    client: Any,
    definition: IndexDefinition,
    queryset: Any,
    index: str,
    counts: LoadCounts,
    config: Config,
    progress: ProgressFactory | None,
    total: int,
    on_failure: FailureCallback | None = None,
    *,
    resume: bool = False,
    lock: Any = None,
) -> None:
    """Load every range of ``index`` not done yet with the executor ``config`` names; merge into ``counts``.

    ``resume``: keep the ranges a killed run recorded as done (their counts merged as
    recorded), load the others.
    """
    build = open_build(client, definition, queryset, index, config, total, resume)
    merger = Merger(definition.alias, counts, config.max_errors, on_failure)
    todo = []
    for state in build.read(client):
        if state.state == DONE and state.result is not None:
            merger.absorb(state.result)
        else:
            todo.append(state.number)
    run = executor(config.executor_name)
    bar = progress(total, definition.alias) if progress else None
    with nullcontext() if bar is None else closing(bar):
        if bar is not None and counts.rows_read:
            bar.update(counts.indexed + counts.failed)
        if todo:
            run(Job(client, definition, build, config, merger.absorb, bar, lock), todo)


def open_build(
    client: Any, definition: IndexDefinition, queryset: Any, index: str, config: Config, total: int, resume: bool
) -> BuildState:
    """The recorded ranges of ``index``: read back when resuming, else split and recorded now."""
    found = BuildState.find(client, config.lock_index, index) if resume else None
    if found is not None:
        return found[0]
    parts = range_count(total, config.executor_name, config.workers, config.range_size)
    bounds = pk_ranges(queryset, total, parts)
    return BuildState.start(client, config.lock_index, definition, index, bounds, BulkOptions.from_config(config))


def executor(name: str) -> Executor:
    """The function that runs ranges for executor ``name``; Celery is imported only for ``celery``."""
    if name == "processes":
        from reindex.executors.parallel import run_ranges

        return run_ranges
    if name == "celery":
        try:
            from reindex.executors.celery import run_ranges as run_celery
        except ImportError as exc:
            raise ConfigurationError(f"--executor celery needs Celery: pip install 'reindex[celery]' ({exc})") from None
        return run_celery
    return run_local


@dataclass
class Merger:
    """Merges range results into the run's counts, each range once, and enforces the global error budget."""

    alias: str
    counts: LoadCounts
    max_errors: int
    on_failure: FailureCallback | None = None
    merged: set[int] = field(default_factory=set)

    def absorb(self, result: RangeResult) -> None:
        """Add ``result`` (unless its range was merged already); raise when the run must stop."""
        if result.number in self.merged:
            return
        self.merged.add(result.number)
        self.counts.merge(result.counts)
        if self.on_failure is not None:
            for report in result.reports:
                self.on_failure(report)
        check_failures(self.counts, self.max_errors, self.alias)
        if result.error:
            prefixed = result.error.startswith(f"{self.alias}:")
            raise error_named(result.error_type, result.error if prefixed else f"{self.alias}: {result.error}")
