"""Who loads a build's ranges: this process, worker processes, or the site's Celery workers.

``load()`` splits the rows at primary-key quantiles and records the ranges in
the search server (``reindex.ranges``), or, resuming, reads back those a killed run
recorded; it merges the ranges done already and has an executor load the others:

- ``local``: this process, range after range;
- ``processes``: ``config.workers`` worker processes on this machine (``reindex.parallel``);
- ``celery``: one Celery task per range, run by the site's workers on any machine
  (``reindex.celery_executor``, imported only when asked for).

Wherever a range runs, ``load_range()`` loads it and records its result, and the
coordinator merges that result by range number, once::

    load(client, ProductIndex(), queryset, "products-2026...", counts, Config(), None, total)
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, nullcontext, suppress
from dataclasses import dataclass, field
from typing import Any

from reindex.config import Config
from reindex.definitions import IndexDefinition
from reindex.documents import Failure
from reindex.errors import ConfigurationError, Interrupted, ReindexError, Superseded, TooManyErrors, error_named
from reindex.loading import (
    MAX_REPORTED_FAILURES,
    FailureCallback,
    LoadCounts,
    Progress,
    ProgressFactory,
    check_failures,
    stream_rows,
)
from reindex.ranges import DONE, BuildState, RangeResult, decode_pk, pk_ranges, range_count
from reindex.sending import BulkOptions

#: Loads the ranges ``numbers`` of a job's build: ``run(job, numbers)``.
Executor = Callable[["Job", list[int]], None]
#: Seconds between two records of a running range's progress (its heartbeat).
BEAT_INTERVAL = 1.0


@dataclass
class Job:
    """What an executor needs to load ranges of a build, and to hand each result back (``absorb``)."""

    client: Any
    definition: IndexDefinition
    build: BuildState
    config: Config
    absorb: Callable[[RangeResult], None]
    bar: Progress | None = None
    #: The coordinator's ``AliasLock`` (None when there is none): a lost lock stops a long load.
    lock: Any = None


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
        from reindex.parallel import run_ranges

        return run_ranges
    if name == "celery":
        try:
            from reindex.celery_executor import run_ranges as run_celery
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


def run_local(job: Job, numbers: list[int]) -> None:
    """The local executor: load the ranges one after the other in this process."""
    for number in numbers:
        result = load_range(job.client, job.definition, job.build, number, job.config, job.bar)
        if result is not None:
            job.absorb(result)


def load_range(
    client: Any,
    definition: IndexDefinition,
    build: BuildState,
    number: int,
    config: Config,
    bar: Progress | None = None,
) -> RangeResult | None:
    """Claim range ``number``, load it and record its result; None when it was done already.

    Too many failed rows end the range with its result recorded as failed (the
    coordinator raises). Any other error is recorded and raised; Superseded (the build
    is gone, or the range was claimed again) and Interrupted are raised without a record.
    """
    attempt = build.claim(client, number)
    if attempt is None:
        return None
    queryset = definition.get_queryset()
    upto = decode_pk(queryset, attempt.upto)
    if upto is not None:
        queryset = queryset.filter(pk__lte=upto)
    result = RangeResult(number)
    duplicates = DuplicateReports(attempt.rerun)
    heartbeat = Heartbeat(attempt, result.counts, bar)
    try:
        # The lower bound is where the keyset starts, not a second "pk >" condition,
        # which PostgreSQL may misestimate into scanning the rest of the range per batch.
        with frozen_heap():
            stream_rows(
                client,
                definition,
                queryset,
                build.index,
                result.counts,
                config,
                on_failure=duplicates.add,
                bar=heartbeat,
                after=decode_pk(queryset, attempt.after),
            )
    except TooManyErrors as exc:
        result.error, result.error_type = str(exc), type(exc).__name__
    except (Superseded, Interrupted):  # not this attempt's to record: the range is simply not done
        raise
    except Exception as exc:
        result.error = str(exc) if isinstance(exc, ReindexError) else f"{type(exc).__name__}: {exc}"
        result.error_type = type(exc).__name__
        result.reports = result.counts.failures + duplicates.kept
        with suppress(Superseded):
            attempt.finish(result)
        raise
    result.reports = result.counts.failures + duplicates.kept
    attempt.finish(result)
    return result


#: Allocations between two collections of the youngest generation during a range (Python's default: 700).
YOUNG_THRESHOLD = 20_000


@contextmanager
def frozen_heap() -> Iterator[None]:
    """Keep the objects alive before a range out of the garbage collector's passes during it, and collect less often.

    A range allocates millions of short-lived objects, and the full collections they
    set off walk every object the process holds: in a Celery worker process (Celery's,
    Django's and the site's objects) that was 15-20% of its CPU. ``gc.freeze()`` sets
    them aside for the range and ``gc.unfreeze()`` gives them back, so nothing is kept
    alive for good; a process that froze objects itself is left alone. The rows,
    documents and bodies of a batch hold no cycles (reference counting frees them), but
    every 700 of them made a young collection walk the batches in flight: collecting
    every ``YOUNG_THRESHOLD`` allocations instead took a tenth off a single process's
    CPU (docs/performance.md). The thresholds are set back after the range.
    """
    thresholds = gc.get_threshold()
    gc.set_threshold(max(thresholds[0], YOUNG_THRESHOLD), *thresholds[1:])
    try:
        if gc.get_freeze_count():
            yield
            return
        gc.freeze()
        try:
            yield
        finally:
            gc.unfreeze()
    finally:
        gc.set_threshold(*thresholds)


class DuplicateReports:
    """The duplicate ids a range reports (the first 100); failed rows are in its counts already.

    In a range loaded again (``rerun``), an id written once more is the earlier attempt's
    document rewritten, not a duplicate: only an id written twice in this attempt is one.
    """

    def __init__(self, rerun: bool) -> None:
        self.rerun = rerun
        self.seen: set[str | None] = set()
        self.kept: list[Failure] = []

    def add(self, failure: Failure) -> None:
        if failure.error_type != "duplicate_id":
            return
        if self.rerun:
            first = failure.id not in self.seen
            self.seen.add(failure.id)
            if first:
                return
        if len(self.kept) < MAX_REPORTED_FAILURES:
            self.kept.append(failure)


class Heartbeat:
    """A progress bar stand-in for a range: forwards to ``bar`` and records the range's progress every second.

    Recording it is also where the attempt learns that it is no longer wanted (Superseded).
    """

    def __init__(self, attempt: Any, counts: LoadCounts, bar: Progress | None) -> None:
        self.attempt, self.counts, self.bar = attempt, counts, bar
        self.last = time.monotonic()

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)
        now = time.monotonic()
        if now - self.last >= BEAT_INTERVAL:
            self.last = now
            self.attempt.beat(self.counts.rows_read)

    def close(self) -> None:
        return None
