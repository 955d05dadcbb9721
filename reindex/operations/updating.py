"""Incremental updates: re-send, in place, the documents of the rows changed since a watermark.

``update()`` takes the alias's lock, notes the time on the database's clock, reads
the rows changed since the last watermark (less the overlap, ``REINDEX["UPDATE_OVERLAP"]``)
or since ``since``, writes their documents into the live index and deletes the
documents of changed rows that left the queryset, then records the time it noted as
the new watermark. ``everything=True`` re-sends every row instead (after ``migrate``
added a field). Internal: users call it through the public API::

    import reindex

    [result] = reindex.update("products")
    print(result.changed, result.indexed, result.deleted, result.watermark)

Rows deleted outright leave no timestamp behind: ``reindex sweep`` finds those.
"""

from __future__ import annotations

import datetime
from contextlib import closing, nullcontext
from dataclasses import dataclass, field
from typing import Any, ClassVar

from reindex.config import Config
from reindex.definitions.definition import HOW_TO_TRACK, IndexDefinition
from reindex.errors import ConfigurationError
from reindex.operations.outcomes import RunOutcome, failing_into
from reindex.operations.retention import held_lock
from reindex.pipeline.changes import changed_pk_chunks, count_changed
from reindex.pipeline.loading import (
    FailureCallback,
    LoadCounts,
    ProgressFactory,
    log_start,
    stream_changes,
    stream_rows,
)
from reindex.results import JsonResult, json_as
from reindex.server import indexes
from reindex.server.watermarks import Watermark, database_now, parse_since, read_watermark, record_watermark


@dataclass(kw_only=True)
class UpdateResult(RunOutcome, LoadCounts, JsonResult):
    """What one update did: the report ``update --json`` prints."""

    json_placed: ClassVar = {
        "changed": ("rows_read", "indexed", "deleted", "failed", "failures"),
        "seconds": ("skipped", "error"),
    }

    alias: str
    definition: str
    index: str | None = None
    #: What the changes were read from: ``watermark``, ``since`` (given) or ``all``.
    since_from: str | None = None
    #: The changes read were those at or after this time (None with ``all``).
    since: datetime.datetime | None = None
    #: Primary keys in the changed set (rows with ``all``).
    changed: int = 0
    #: The alias's watermark after the run: changes before it are in the index.
    watermark: datetime.datetime | None = None
    #: False when ``since`` started after the watermark: the run did not read every change
    #: since it, so it left it where it was.
    watermark_moved: bool = False
    seconds: float = field(default=0.0, metadata=json_as(rounded=3))


def update(
    definition: IndexDefinition,
    client: Any,
    config: Config | None = None,
    *,
    since: str | datetime.datetime | datetime.timedelta | None = None,
    everything: bool = False,
    progress: ProgressFactory | None = None,
    on_failure: FailureCallback | None = None,
) -> UpdateResult:
    """Bring the live index of ``definition``'s alias up to date with the rows changed since the watermark.

    ``since``: a time, a duration before now, or the text ``--since`` takes, instead of
    the watermark. ``everything``: re-send every row. Raises ConfigurationError (not
    built, no watermark, changes not tracked), Locked, or RunFailed (the watermark
    is not moved: the next update reads the same rows again).
    """
    config = config or Config()
    result = UpdateResult(alias=definition.alias, definition=definition.path)
    with failing_into(result), held_lock(client, definition.alias, config) as lock:
        Update(definition, client, config, result).run(since, everything, progress, on_failure)
        lock.check()  # a run that took the lock over owns the watermark now
        if result.watermark_moved:
            assert result.watermark is not None
            record_watermark(client, definition.alias, result.watermark, "update", str(result.index), config)
    return result


@dataclass
class Update:
    """One update under way: which index, since when, then the changes sent."""

    definition: IndexDefinition
    client: Any
    config: Config
    result: UpdateResult

    def run(
        self,
        since: str | datetime.datetime | datetime.timedelta | None,
        everything: bool,
        progress: ProgressFactory | None,
        on_failure: FailureCallback | None,
    ) -> None:
        definition, result = self.definition, self.result
        definition.check_ids()
        if not (everything or definition.tracks_changes):
            raise ConfigurationError(
                f"{definition.alias}: changes are not tracked: {HOW_TO_TRACK}; "
                f"or re-send every row with: update {definition.alias} --all"
            )
        result.index = indexes.serving_index(self.client, definition.alias)
        now = database_now(definition.get_queryset().db)  # before any read
        previous = read_watermark(self.client, definition.alias, self.config.lock_index)
        result.watermark, result.watermark_moved = now, True
        if everything:
            result.since_from = "all"
            queryset = definition.get_queryset()
            result.changed = queryset.count()
            self.load(progress, on_failure, queryset=queryset)
            return
        if since is None:
            result.since_from = "watermark"
            result.since = self.continue_from(previous)
        else:
            result.since_from = "since"
            result.since = parse_since(since, now)
            if not self.covers(previous, result.since):
                assert previous is not None
                result.watermark, result.watermark_moved = previous.time, False
        result.changed = count_changed(definition, result.since)
        self.load(progress, on_failure, since=result.since)

    def covers(self, previous: Watermark | None, since: datetime.datetime) -> bool:
        """Whether reading from ``since`` reads every change the watermark does not cover yet."""
        if previous is None or previous.index != self.result.index:
            return True
        return since <= previous.time - datetime.timedelta(seconds=self.config.update_overlap)

    def continue_from(self, mark: Watermark | None) -> datetime.datetime:
        """Where the last update or rebuild left off, less the overlap; refuses when it does not apply."""
        alias = self.definition.alias
        if mark is None:
            raise ConfigurationError(
                f"{alias}: no watermark yet (no update or rebuild recorded one); "
                f"pass --since (e.g. --since 1d), or run reindex rebuild {alias}"
            )
        if mark.index != self.result.index:
            raise ConfigurationError(
                f"{alias}: the watermark was recorded for {mark.index}, but the alias serves {self.result.index} "
                f"now (rolled back?); pass --since, or run reindex rebuild {alias}"
            )
        return mark.time - datetime.timedelta(seconds=self.config.update_overlap)

    def load(
        self,
        progress: ProgressFactory | None,
        on_failure: FailureCallback | None,
        *,
        queryset: Any = None,
        since: datetime.datetime | None = None,
    ) -> None:
        """Send the changes (or every row of ``queryset``) to the live index, in this process or in workers."""
        definition, result, config = self.definition, self.result, self.config
        assert result.index is not None
        since_text = "every row" if since is None else f"rows changed since {since.isoformat(timespec='milliseconds')}"
        log_start(definition.alias, "update", f"{result.changed:,} {since_text} into {result.index}")
        if config.workers > 1:
            from reindex.executors.parallel import update_parallel

            update_parallel(definition, result.index, result, config, progress, result.changed, on_failure, since=since)
            return
        bar = progress(result.changed, definition.alias) if progress else None
        with nullcontext() if bar is None else closing(bar):
            if since is None:
                stream_rows(
                    self.client,
                    definition,
                    queryset,
                    result.index,
                    result,
                    config,
                    on_failure=on_failure,
                    bar=bar,
                    in_place=True,
                )
            else:
                chunks = changed_pk_chunks(definition, since, config.batch_size_for(definition))
                stream_changes(
                    self.client, definition, chunks, result.index, result, config, on_failure=on_failure, bar=bar
                )
