"""A rebuild that loses no write: the changes made while it loaded, applied to its new index.

A load reads the table batch by batch for minutes or hours; a row that changes after
its batch was read would otherwise be stale in the new index until the next night.
When a definition tracks its changes (``updated_field`` or ``changed_since()``), the
rebuild notes the time on the database's clock before its first read, and after
the load, before the swap:

1. applies the rows changed since the time it noted (less the overlap), noting the
   time again before each read, and repeats while the delta shrinks (at most
   ``ROUNDS`` times; a delta that would not shrink is left to the one after the
   swap, which reads from the same time on);
2. sweeps the new index for the rows deleted outright meanwhile (a deleted row leaves
   no timestamp for a delta to find), after the last delta, so that only the rows
   deleted during the sweep itself and the swap are left; then refreshes.

After the swap it records the last time noted as the alias's watermark, applies one
last delta for the changes made during the swap, sweeps once more for the rows
deleted since the sweep before it, and records the watermark again.
An ``update`` started meanwhile found the alias locked (exit 3): its rows are in
these deltas, since the first time noted predates every read::

    catch_up = CatchUp(definition, client, config, result)  # before the first read
    ...  # load the new index
    catch_up.before_swap(new_index)
    ...  # swap
    catch_up.after_swap(new_index)
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from reindex.config import Config
from reindex.definitions.definition import IndexDefinition
from reindex.operations.sweeping import sweep_index
from reindex.pipeline.changes import changed_pk_chunks, count_changed
from reindex.pipeline.loading import FailureCallback, LoadCounts, stream_changes
from reindex.results import JsonResult, json_as
from reindex.server.watermarks import database_now, record_watermark

#: At most this many deltas before the swap.
ROUNDS = 5


@dataclass(kw_only=True)
class DeltaCounts(LoadCounts, JsonResult):
    """What one phase did: changed primary keys, documents written and deleted, documents swept."""

    json_placed: ClassVar = {"changed": ("indexed", "deleted", "failed")}

    changed: int = 0
    #: Documents of rows deleted outright, removed by the phase's sweep (not in ``deleted``).
    swept: int = 0


@dataclass
class CatchUpReport(JsonResult):
    """The catch-up of one rebuild: deltas and a sweep before the swap, a delta and a sweep after it."""

    rounds: int = 0
    before_swap: DeltaCounts = field(default_factory=DeltaCounts, metadata=json_as(flatten=True))
    after_swap: DeltaCounts = field(default_factory=DeltaCounts)

    @property
    def swept(self) -> int:
        """Documents of rows deleted outright during the load, removed before the swap."""
        return self.before_swap.swept


class CatchUp:
    """The changes a rebuild's load missed; created before the first read (it notes the time then)."""

    def __init__(
        self, definition: IndexDefinition, client: Any, config: Config, on_failure: FailureCallback | None = None
    ) -> None:
        definition.check_ids()
        self.definition, self.client, self.config = definition, client, config
        self.on_failure = on_failure
        self.report = CatchUpReport()
        self.db = definition.get_queryset().db
        #: Every change committed before this time is in the new index (or will be, once applied).
        self.mark: datetime.datetime = database_now(self.db)

    def before_swap(self, index: str) -> None:
        """Apply deltas while they shrink, sweep the rows deleted meanwhile, refresh."""
        counts = self.report.before_swap
        applied = self.apply(index, counts)
        self.report.rounds = 1
        while applied and self.report.rounds < ROUNDS:
            # A delta that does not shrink is left to the one after the swap, which reads
            # from the same time on: applying it here would only send the same rows twice.
            pending = count_changed(self.definition, self.since())
            if pending == 0 or pending >= applied:
                break
            applied = self.apply(index, counts)
            self.report.rounds += 1
        self.sweep(index, counts)
        self.client.indices.refresh(index=index)

    def after_swap(self, index: str) -> datetime.datetime:
        """Record the watermark, apply the changes made during the swap, sweep again, record it again; return it."""
        self.record(index)
        self.apply(index, self.report.after_swap)
        self.sweep(index, self.report.after_swap)
        return self.record(index)

    def sweep(self, index: str, counts: DeltaCounts) -> None:
        """Delete the documents of the rows deleted outright (or filtered out) so far, counted as ``swept``."""
        self.client.indices.refresh(index=index)  # the sweep reads ids by search: the deltas' documents too
        deleted = counts.deleted
        sweep_index(self.client, self.definition, index, counts, self.config, on_failure=self.on_failure)
        counts.swept += counts.deleted - deleted
        counts.deleted = deleted

    def apply(self, index: str, counts: DeltaCounts) -> int:
        """Apply the rows changed since the last time noted (less the overlap); return how many there were.

        Failed rows count in ``counts`` (up to ``max_errors`` per phase, like an update), not
        in the load's: a row that failed in the load and changed meanwhile fails again here.
        """
        since = self.since()
        self.mark = database_now(self.db)  # before this delta's read
        before = counts.changed
        chunks = _counted(
            changed_pk_chunks(self.definition, since, self.config.batch_size_for(self.definition)), counts
        )
        stream_changes(self.client, self.definition, chunks, index, counts, self.config, on_failure=self.on_failure)
        return counts.changed - before

    def since(self) -> datetime.datetime:
        """Where the next delta reads from: the last time noted, less the overlap."""
        return self.mark - datetime.timedelta(seconds=self.config.update_overlap)

    def record(self, index: str) -> datetime.datetime:
        record_watermark(self.client, self.definition.alias, self.mark, "rebuild", index, self.config)
        return self.mark


def _counted(chunks: Iterable[list[Any]], counts: DeltaCounts) -> Iterator[list[Any]]:
    for chunk in chunks:
        counts.changed += len(chunk)
        yield chunk
