"""Loading rows into an index: read in keyset batches, build, send in bulk, count.

The one loader used by a single process and by each worker process of ``--workers``
(``reindex.executors.parallel``), for a rebuild's fresh index and for ``update``'s writes in
place. It reads the rows batch by batch on the caller's thread (a whole queryset, or
the rows of chunks of changed primary keys), builds and serialises the documents,
and sends them from a background thread (``reindex.server.sending``) while the next batch
is built::

    counts = LoadCounts()
    stream_rows(client, ProductIndex(), queryset, "products-2026...", counts, Config())
    print(counts.indexed, counts.failed)
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from reindex import interrupts
from reindex.config import Config
from reindex.definitions.definition import IndexDefinition
from reindex.definitions.documents import (
    Action,
    Failure,
    build_batches,
    item_failure,
    iter_batches,
    replaced_a_document,
)
from reindex.errors import TooManyErrors
from reindex.pipeline.changes import change_action_batches
from reindex.server.sending import BulkOptions, BulkSender

T = TypeVar("T")

#: Failures kept in a result for reporting (all are counted).
MAX_REPORTED_FAILURES = 100


class Progress(Protocol):
    def update(self, n: int) -> Any: ...
    def close(self) -> Any: ...


#: Makes a progress bar from the number of rows and a label (e.g. ``tqdm``).
ProgressFactory = Callable[[int, str], Progress]

#: The line each run logs as it starts (``--log-file`` keeps it, ``-v`` shows it).
run_logger = logging.getLogger("reindex.runs")


def log_start(alias: str, run: str, what: str) -> None:
    """Log that ``run`` starts on ``alias``: ``products: rebuild started: 5,000 rows into products-...``."""
    run_logger.info("%s: %s started: %s", alias, run, what)


def keep_failure(failures: list[Failure], failure: Failure) -> None:
    """Keep ``failure`` if ``failures`` holds fewer than the ``MAX_REPORTED_FAILURES`` a result reports."""
    if len(failures) < MAX_REPORTED_FAILURES:
        failures.append(failure)


#: Called with every failed row, e.g. to write it to ``--errors-file``.
FailureCallback = Callable[[Failure], None]


@dataclass(kw_only=True)
class LoadCounts:
    """What a load did to its rows: read, indexed, failed (with the first reasons), duplicates, deleted."""

    rows_read: int = 0
    indexed: int = 0
    failed: int = 0
    failures: list[Failure] = field(default_factory=list)
    duplicates: int = 0
    #: Documents deleted because their rows are gone or left the queryset (``update``, ``sweep``).
    deleted: int = 0

    def add_failure(self, failure: Failure) -> None:
        self.failed += 1
        keep_failure(self.failures, failure)

    def merge(self, part: LoadCounts) -> None:
        """Add the counts and failures of one part of the load (a worker's range)."""
        self.rows_read += part.rows_read
        self.indexed += part.indexed
        self.duplicates += part.duplicates
        self.deleted += part.deleted
        failed_before = self.failed
        for failure in part.failures:
            self.add_failure(failure)
        self.failed = failed_before + part.failed  # failures beyond those reported count too


def check_failures(counts: LoadCounts, max_errors: int, alias: str) -> None:
    """Raise TooManyErrors once more rows failed than ``max_errors`` allows."""
    if counts.failed > max_errors:
        first = counts.failures[0]
        raise TooManyErrors(
            f"{alias}: {counts.failed} rows failed, more than --max-errors {max_errors} "
            f"(first: id {first.id}: {first.reason})"
        )


def stream_rows(
    client: Any,
    definition: IndexDefinition,
    queryset: Any,
    index: str,
    counts: LoadCounts,
    config: Config,
    *,
    on_failure: FailureCallback | None = None,
    bar: Progress | None = None,
    after: Any = None,
    in_place: bool = False,
) -> None:
    """Read ``queryset`` in batches and send each batch's documents to ``index`` in one bulk request.

    ``after``: start the keyset past this primary key. ``in_place``: the index already
    holds documents, so a write that replaces one is no duplicate (``update --all``).
    Raises TooManyErrors past ``config.max_errors`` failed rows, Interrupted at a batch
    boundary after a signal.
    """
    tally = Tally(definition.alias, counts, config.max_errors, on_failure, bar, in_place)
    batches = iter_batches(queryset, config.batch_size_for(definition), after, cursor=definition.cursor_reads)
    send(client, build_batches(definition, index, batches, tally.read, tally.failed), tally, config)


def stream_changes(
    client: Any,
    definition: IndexDefinition,
    pk_chunks: Iterable[Sequence[Any]],
    index: str,
    counts: LoadCounts,
    config: Config,
    *,
    on_failure: FailureCallback | None = None,
    bar: Progress | None = None,
    max_errors: int | None = None,
) -> None:
    """Re-send, in place, the documents of the rows with these primary keys (chunks in ascending order).

    Each chunk is one ``get_queryset().filter(pk__in=chunk)`` read; a primary key the
    read does not return (the row is gone, or the queryset leaves it out) has its
    document deleted, and a document already absent is no failure. ``max_errors``:
    failed rows allowed (default ``config.max_errors``).
    """
    allowed = config.max_errors if max_errors is None else max_errors
    tally = Tally(definition.alias, counts, allowed, on_failure, bar, in_place=True)
    batches = change_action_batches(definition, index, definition.get_queryset(), pk_chunks, tally.read, tally.failed)
    send(client, batches, tally, config)


@dataclass
class Tally:
    """The counting side of a load: rows read, bulk results, failures, the bar."""

    alias: str
    counts: LoadCounts
    max_errors: int
    on_failure: FailureCallback | None = None
    bar: Progress | None = None
    #: Writes that replace a document are expected (``update``), not duplicates (a fresh index).
    in_place: bool = False

    def read(self, n: int) -> None:
        interrupts.check()
        self.counts.rows_read += n

    def failed(self, failure: Failure) -> None:
        self.counts.add_failure(failure)
        if self.on_failure is not None:
            self.on_failure(failure)
        self.tick(1)
        check_failures(self.counts, self.max_errors, self.alias)

    def tick(self, n: int) -> None:
        if self.bar is not None and n:
            self.bar.update(n)

    def account(self, indexed: int, others: list[tuple[bool, dict[str, Any]]]) -> None:
        """Count what the sender reports: documents created, and every other result."""
        interrupts.check()
        counts = self.counts
        counts.indexed += indexed
        self.tick(indexed)
        for ok, item in others:
            if "delete" in item:
                self.deleted(ok, item)
            elif ok and replaced_a_document(item) and not self.in_place:
                counts.duplicates += 1
                self.tick(1)  # a row done all the same (and a range loaded again beats on)
                if self.on_failure is not None:
                    self.on_failure(duplicate_failure(item))
            elif ok:
                counts.indexed += 1
                self.tick(1)
            else:
                self.failed(item_failure(item))

    def deleted(self, ok: bool, item: dict[str, Any]) -> None:
        if ok:
            self.counts.deleted += 1
        elif item["delete"].get("status") != 404:  # already gone is what a delete wants
            self.failed(item_failure(item))
            return
        self.tick(1)


def send(client: Any, batches: Iterable[Sequence[Action]], tally: Tally, config: Config) -> None:
    """Send each batch of actions as one bulk request from a background thread, counting the results in ``tally``."""
    with BulkSender(client, BulkOptions.from_config(config)) as sender:
        for batch in batches:
            sender.send(batch)
            tally.account(*sender.take())
    tally.account(*sender.take())


def chunked(items: Iterator[T], size: int) -> Iterator[list[T]]:
    """Lists of ``size`` items (the last may be shorter)."""
    while batch := list(itertools.islice(items, size)):
        yield batch


def duplicate_failure(item: dict[str, Any]) -> Failure:
    """The report of a document id that more than one row produced."""
    doc_id = next(iter(item.values())).get("_id")
    return Failure(doc_id, f"duplicate document id {doc_id}: a later row replaced an earlier one", "duplicate_id")
