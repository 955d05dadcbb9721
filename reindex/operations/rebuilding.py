"""The full rebuild: create a fresh index, load it, verify it, catch up, swap the alias, clean up.

``rebuild()`` strings the named steps together; if anything fails before the swap
the new index is deleted and the alias is left where it was. A definition that
tracks its changes also gets the writes made during the load (``catching_up.py``).
Internal: users call it through the public API::

    import reindex

    [result] = reindex.rebuild("products", keep=1)
    print(result.indexed, result.new_index)
"""

from __future__ import annotations

import datetime
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any, ClassVar

from reindex import interrupts
from reindex.config import Config
from reindex.definitions.definition import IndexDefinition
from reindex.errors import ConfigurationError, RunFailed, TooFewDocuments
from reindex.executors import ranges
from reindex.executors.coordinator import load
from reindex.operations.catching_up import CatchUp, CatchUpReport
from reindex.operations.outcomes import RunOutcome, failing_into
from reindex.operations.retention import held_lock, retention
from reindex.pipeline.loading import FailureCallback, LoadCounts, ProgressFactory, log_start
from reindex.results import JsonResult, json_as
from reindex.server import indexes
from reindex.server.drift import definition_marker
from reindex.server.locking import AliasLock
from reindex.server.ownership import new_index_meta
from reindex.server.sending import BulkOptions

#: Index settings applied while loading, then restored to the declared values.
LOAD_SETTINGS = {"refresh_interval": "-1", "number_of_replicas": 0}


@dataclass(kw_only=True)
class RebuildResult(RunOutcome, LoadCounts, JsonResult):
    """What one rebuild did: the report ``--json`` prints."""

    json_placed: ClassVar = {
        "old_indexes": ("rows_read", "indexed", "failed", "failures", "duplicates"),
        "kept": ("skipped", "error"),
    }

    alias: str
    definition: str
    new_index: str | None = None
    old_indexes: list[str] = field(default_factory=list)
    live_count: int | None = None
    replaced_index: str | None = None
    abandoned_dropped: list[str] = field(default_factory=list)
    #: True when this run went on with a build a killed run left (``resume``).
    resumed: bool = False
    lock_taken_over_from: str | None = None
    #: Why: "process_gone" (the holder's process no longer exists) or "heartbeat_expired".
    lock_taken_over_because: str | None = None
    seconds: float = field(default=0.0, metadata=json_as(rounded=3))
    swapped: bool = False
    dropped: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    #: The changes made during the load, applied before and after the swap (None when
    #: the definition does not track its changes).
    caught_up: CatchUpReport | None = None
    #: The watermark recorded after the swap (``update`` continues from it).
    watermark: datetime.datetime | None = None


def rebuild(
    definition: IndexDefinition,
    client: Any,
    config: Config | None = None,
    *,
    force: bool = False,
    replace_existing_index: bool = False,
    progress: ProgressFactory | None = None,
    on_failure: FailureCallback | None = None,
    resume: bool = False,
) -> RebuildResult:
    """Rebuild the alias of ``definition`` from the database, without a gap in search.

    With ``resume``, go on with the newest build a killed run left, keeping its ranges done.

    Raises RunFailed (alias untouched, new index deleted), Locked or ConfigurationError;
    a RunFailed carries the result so far in ``.result``.
    """
    config = config or Config()
    result = RebuildResult(alias=definition.alias, definition=definition.path)
    with failing_into(result), held_lock(client, definition.alias, config) as lock:
        if lock.took_over is not None:
            result.lock_taken_over_from = f"{lock.took_over.host}:{lock.took_over.pid}"
            result.lock_taken_over_because = lock.took_over_because
        build = Build(definition, client, config, result, lock, force, replace_existing_index, resume)
        build.run(progress, on_failure)
    return result


@dataclass
class Build:
    """One rebuild under way: what it reads and where it writes, step by step."""

    definition: IndexDefinition
    client: Any
    config: Config
    result: RebuildResult
    lock: AliasLock
    force: bool = False
    replace_existing_index: bool = False
    resume: bool = False

    def run(self, progress: ProgressFactory | None, on_failure: FailureCallback | None) -> None:
        """The named steps: check, clear abandoned builds, create, load, verify, catch up, guard, swap, clean up."""
        client, alias, result = self.client, self.definition.alias, self.result
        catch_up = None
        if self.definition.tracks_changes:  # checks the definition's ids, notes the time before any read
            catch_up = CatchUp(self.definition, client, self.config, on_failure)
            result.caught_up = catch_up.report
        old = result.old_indexes = check_alias(client, alias, self.replace_existing_index)
        if not old and self.replace_existing_index and indexes.is_concrete_index(client, alias):
            result.replaced_index = alias
        resumed = ranges.resumable(client, self.definition, self.config.lock_index) if self.resume else None
        abandoned = [name for name in indexes.abandoned_indexes(client, alias) if name != resumed]
        result.abandoned_dropped = indexes.delete_owned(client, alias, abandoned)
        ranges.forget_builds(client, self.config.lock_index, result.abandoned_dropped, self.options)
        queryset = self.definition.get_queryset()
        total = queryset.count()
        interrupts.check()
        result.new_index = resumed or create_new_index(client, self.definition)
        result.resumed = resumed is not None
        log_start(
            alias, "rebuild", f"{total:,} rows into {result.new_index}" + (" (resumed)" if result.resumed else "")
        )
        try:
            load(
                client,
                self.definition,
                queryset,
                result.new_index,
                result,
                self.config,
                progress,
                total,
                on_failure,
                resume=result.resumed,
                lock=self.lock,
            )
            finish_settings(client, self.definition, result.new_index)
            verify(client, result, self.config.lock_index)
            if catch_up is not None:
                catch_up.before_swap(result.new_index)
            check_ratio(client, result, self.config.min_ratio, self.force)
            self.swap()
        except BaseException:
            if not result.swapped:
                # the tasks left stop
                ranges.forget_builds(client, self.config.lock_index, [result.new_index], self.options)
                drop_new_index(client, result.new_index)
            raise
        finally:
            if result.swapped:
                ranges.forget_builds(client, self.config.lock_index, [result.new_index], self.options)
        if catch_up is not None:
            result.watermark = catch_up.after_swap(result.new_index)
        kept = retention(client, alias, self.config.keep, before=result.new_index)
        result.dropped, result.kept = indexes.delete_owned(client, alias, kept.delete), kept.kept

    @property
    def options(self) -> BulkOptions:
        return BulkOptions.from_config(self.config)

    def swap(self) -> None:
        """Move the alias to the new index in one request, if this run still holds the lock."""
        result = self.result
        assert result.new_index is not None
        self.lock.check()
        interrupts.check()  # the last safe point: after it the swap and its record go together
        replaced = [result.replaced_index] if result.replaced_index else []
        indexes.swap_alias(self.client, result.alias, result.new_index, result.old_indexes, remove_index=replaced)
        result.swapped = True
        indexes.mark_live(self.client, result.new_index)


def check_alias(client: Any, alias: str, replace_existing_index: bool = False) -> list[str]:
    """The indexes the alias points at now; refuses when the name is a concrete index.

    With ``replace_existing_index`` a concrete index is allowed (and [] returned): the
    swap removes it in the same atomic request that adds the alias.
    """
    if indexes.is_concrete_index(client, alias):
        if replace_existing_index:
            return []
        raise ConfigurationError(
            f"{alias!r} is a concrete index, not an alias (built earlier without aliases?); "
            "pass --replace-existing-index to replace it with the alias in one atomic request"
        )
    return indexes.alias_targets(client, alias)


def create_new_index(client: Any, definition: IndexDefinition) -> str:
    """Create ``<alias>-<timestamp>`` with the declared settings, tuned for loading."""
    settings = {**definition.get_settings(), **LOAD_SETTINGS}
    mappings = definition.get_mappings()
    mappings["_meta"] = new_index_meta(
        mappings.get("_meta"), definition.alias, definition.path, **definition_marker(definition)
    )
    for _ in range(5):
        name = indexes.new_index_name(definition.alias)
        try:
            indexes.create_index(client, name, settings, mappings)
            return name
        except ConfigurationError:
            if client.indices.exists(index=name):
                continue  # another run took this very microsecond
            raise
    raise RunFailed(f"{definition.alias}: could not find a free index name")


def finish_settings(client: Any, definition: IndexDefinition, index: str) -> None:
    """Restore the declared refresh interval and replicas, then refresh."""
    declared = definition.get_settings()
    restore = {key: declared.get(key) for key in LOAD_SETTINGS}  # None resets to the default
    client.indices.put_settings(index=index, settings={"index": restore})
    client.indices.refresh(index=index)


def verify(client: Any, result: RebuildResult, state_index: str | None = None) -> None:
    """The new index must hold exactly the documents that were accepted, give or take the change queue's writes.

    ``state_index``: where drainers record what they sent into the new index while it
    loaded (``ranges.record_queue_writes``), read after the count: a write that landed
    before the count was recorded before it. The count may then lack up to the queue's
    deletes and hold up to its index actions beside the rebuild's own documents.
    """
    assert result.new_index is not None
    count = int(client.count(index=result.new_index)["count"])
    queue = ranges.queue_writes(client, state_index, result.new_index) if state_index else ranges.QueueWrites()
    created, replaced = result.indexed, result.duplicates
    if not created - queue.deleted <= count <= created + replaced + queue.indexed:
        explained = f" (the change queue sent {queue.indexed} documents and {queue.deleted} deletes into it)"
        raise RunFailed(
            f"{result.alias}: the new index holds {count} documents but {created} were indexed"
            + (explained if queue.indexed or queue.deleted else "")
        )
    # A write that replaced a document is a duplicate id only when neither the queue wrote
    # that document first nor a bulk request resent after its answer was lost wrote it
    # first (reported "updated" for documents whose first write was never counted).
    result.duplicates = max(0, replaced - max(queue.indexed, count - created))
    result.indexed = created + replaced - result.duplicates


def check_ratio(client: Any, result: RebuildResult, min_ratio: float, force: bool = False) -> None:
    """Refuse to swap when the new index holds fewer than ``min_ratio`` of the live documents."""
    if not (result.old_indexes or result.replaced_index):
        return
    result.live_count = int(client.count(index=result.alias)["count"])
    refusal = ratio_refusal(result.alias, result.indexed, result.live_count, min_ratio, force)
    if refusal:
        raise TooFewDocuments(refusal)


def ratio_refusal(alias: str, new_count: int, live_count: int, min_ratio: float, force: bool = False) -> str | None:
    """Why the sanity guard refuses to swap ``new_count`` documents for ``live_count`` (None: it does not)."""
    if force or new_count >= min_ratio * live_count:
        return None
    return (
        f"{alias}: the new index holds {new_count} documents, fewer than {min_ratio:g} "
        f"of the {live_count} in the live index; not swapping (an emptied table or a wrong database?). "
        "Pass --force if this is intended"
    )


def drop_new_index(client: Any, name: str | None) -> None:
    """Best-effort delete of a half-built index; the run is failing anyway."""
    if not name:
        return
    with suppress(Exception):
        client.options(ignore_status=404).indices.delete(index=name)
