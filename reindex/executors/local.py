"""Loading one range of a build, wherever it runs; and the local executor, range after range.

``load_range()`` claims a recorded primary-key range, loads its rows, and records its
result for the coordinator (``coordinator.py``) to merge. Worker processes
(``parallel.py``) and Celery tasks (``celery.py``) call it too; ``run_local`` calls it
in this process, one range after the other.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

from reindex.config import Config
from reindex.definitions.definition import IndexDefinition
from reindex.definitions.documents import Failure
from reindex.errors import Interrupted, ReindexError, Superseded, TooManyErrors
from reindex.executors.ranges import BuildState, RangeResult, decode_pk
from reindex.pipeline.loading import (
    MAX_REPORTED_FAILURES,
    LoadCounts,
    Progress,
    stream_rows,
)

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
    CPU (benchmarks/RESULTS.md). The thresholds are set back after the range.
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
