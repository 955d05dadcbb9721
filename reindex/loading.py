"""Loading rows into an index: read in keyset batches, build, send in bulk, count.

The one loader used by a single process and by each worker process of ``--workers``
(``reindex.parallel``). It reads the queryset batch by batch on the caller's thread,
builds and serialises the documents, and sends them from a background thread
(``reindex.sending``) while the next batch is built::

    counts = LoadCounts()
    stream_rows(client, ProductIndex(), queryset, "products-2026...", counts, Config())
    print(counts.indexed, counts.failed)
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from reindex import interrupts
from reindex.config import Config
from reindex.definitions import IndexDefinition
from reindex.documents import Action, Failure, build_actions, item_failure, iter_batches, replaced_a_document
from reindex.errors import TooManyErrors
from reindex.retries import bulk_retry_options
from reindex.sending import BulkSender

#: Failures kept in a result for reporting (all are counted).
MAX_REPORTED_FAILURES = 100


class Progress(Protocol):
    def update(self, n: int) -> Any: ...
    def close(self) -> Any: ...


#: Makes a progress bar from the number of rows and a label (e.g. ``tqdm``).
ProgressFactory = Callable[[int, str], Progress]
#: Called with every failed row, e.g. to write it to ``--errors-file``.
FailureCallback = Callable[[Failure], None]


@dataclass(kw_only=True)
class LoadCounts:
    """What a load did to its rows: read, indexed, failed (with the first reasons), duplicates."""

    rows_read: int = 0
    indexed: int = 0
    failed: int = 0
    failures: list[Failure] = field(default_factory=list)
    duplicates: int = 0

    def add_failure(self, failure: Failure) -> None:
        self.failed += 1
        if len(self.failures) < MAX_REPORTED_FAILURES:
            self.failures.append(failure)

    def merge(self, part: LoadCounts) -> None:
        """Add the counts and failures of one part of the load (a worker's range)."""
        self.rows_read += part.rows_read
        self.indexed += part.indexed
        self.duplicates += part.duplicates
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
) -> None:
    """Read ``queryset`` in batches and send its documents to ``index`` through the bulk helper.

    ``after``: start the keyset past this primary key. Raises TooManyErrors past
    ``config.max_errors`` failed rows, Interrupted at a batch boundary after a signal.
    """
    batch_size = config.batch_size_for(definition)

    def on_read(n: int) -> None:
        interrupts.check()
        counts.rows_read += n

    def failed(failure: Failure) -> None:
        counts.add_failure(failure)
        if on_failure is not None:
            on_failure(failure)
        if bar is not None:
            bar.update(1)
        check_failures(counts, config.max_errors, definition.alias)

    def account(indexed: int, others: list[tuple[bool, dict[str, Any]]]) -> None:
        interrupts.check()
        counts.indexed += indexed
        if bar is not None and indexed:
            bar.update(indexed)
        for ok, item in others:
            if ok and replaced_a_document(item):
                counts.duplicates += 1
                if bar is not None:  # a row done all the same (and a range loaded again beats on)
                    bar.update(1)
                if on_failure is not None:
                    on_failure(duplicate_failure(item))
            elif ok:
                counts.indexed += 1
            else:
                failed(item_failure(item))

    bulk_options = {"chunk_size": batch_size, "max_chunk_bytes": config.max_chunk_bytes, **bulk_retry_options(config)}
    actions = build_actions(definition, index, iter_batches(queryset, batch_size, after), on_read, failed)
    with BulkSender(client, bulk_options) as sender:
        for batch in chunked(actions, batch_size):
            sender.send(batch)
            account(*sender.take())
    account(*sender.take())


def chunked(actions: Iterator[Action], size: int) -> Iterator[list[Action]]:
    """Lists of ``size`` actions (the last may be shorter)."""
    while batch := list(itertools.islice(actions, size)):
        yield batch


def duplicate_failure(item: dict[str, Any]) -> Failure:
    """The report of a document id that more than one row produced."""
    doc_id = next(iter(item.values())).get("_id")
    return Failure(doc_id, f"duplicate document id {doc_id}: a later row replaced an earlier one", "duplicate_id")
