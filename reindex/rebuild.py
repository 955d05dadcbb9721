"""The full rebuild: create a fresh index, load it, verify it, swap the alias, clean up.

``rebuild()`` strings the named steps together; if anything fails before the swap
the new index is deleted and the alias is left where it was::

    from reindex.connection import Connection
    from reindex.rebuild import RebuildOptions, rebuild

    result = rebuild(ProductIndex(), Connection(settings.REINDEX).client())
    print(result.indexed, result.new_index)
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import closing, nullcontext, suppress
from dataclasses import dataclass, field
from typing import Any, Protocol

from reindex import indexes, interrupts
from reindex.definitions import IndexDefinition
from reindex.documents import Action, Failure, build_actions, item_failure, iter_batches, replaced_a_document
from reindex.drift import definition_marker
from reindex.errors import ConfigurationError, ReindexError, RunFailed
from reindex.locking import DEFAULT_TTL, LOCK_INDEX, AliasLock
from reindex.retries import RETRY_ON_STATUS
from reindex.sending import BulkSender

#: Index settings applied while loading, then restored to the declared values.
LOAD_SETTINGS = {"refresh_interval": "-1", "number_of_replicas": 0}
#: Failures kept in the result for reporting (all are counted).
MAX_REPORTED_FAILURES = 100


class Progress(Protocol):
    def update(self, n: int) -> Any: ...
    def close(self) -> Any: ...


ProgressFactory = Callable[[int, str], Progress]


@dataclass
class RebuildOptions:
    """How to run a rebuild; the CLI fills it from its flags."""

    batch_size: int = 1000
    max_errors: int = 0
    keep: int = 0
    max_chunk_bytes: int = 10 * 1024 * 1024
    #: Refuse to swap when the new index holds fewer than this fraction of the live one.
    min_ratio: float = 0.5
    force: bool = False
    replace_existing_index: bool = False
    lock: bool = True
    lock_ttl: float = DEFAULT_TTL
    lock_index: str = LOCK_INDEX
    #: Bulk retries of documents the server rejected with 429 (whole requests retry in the transport).
    max_retries: int = 8
    retry_backoff: float = 0.5
    retry_backoff_max: float = 10.0
    #: Called with every failed row (e.g. ``FailureLog.for_alias``); the result keeps only the first ones.
    on_failure: Callable[[Failure], None] | None = None
    #: Processes that build and send documents; 1 loads in this process.
    workers: int = 1
    #: Where workers connect (else ``settings.REINDEX``), like ``--es-url``.
    es_url: str | None = None
    #: How worker processes start: "fork" or "spawn"; None: fork on Linux, spawn elsewhere.
    worker_start: str | None = None


@dataclass
class RebuildResult:
    """What one rebuild did: the report ``--json`` prints."""

    alias: str
    definition: str
    new_index: str | None = None
    old_indexes: list[str] = field(default_factory=list)
    rows_read: int = 0
    indexed: int = 0
    failed: int = 0
    failures: list[Failure] = field(default_factory=list)
    duplicates: int = 0
    live_count: int | None = None
    replaced_index: str | None = None
    abandoned_dropped: list[str] = field(default_factory=list)
    lock_taken_over_from: str | None = None
    #: Why: "process_gone" (the holder's process no longer exists) or "heartbeat_expired".
    lock_taken_over_because: str | None = None
    seconds: float = 0.0
    swapped: bool = False
    dropped: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    error: str | None = None

    def add_failure(self, failure: Failure) -> None:
        self.failed += 1
        if len(self.failures) < MAX_REPORTED_FAILURES:
            self.failures.append(failure)

    def as_dict(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "definition": self.definition,
            "new_index": self.new_index,
            "old_indexes": self.old_indexes,
            "rows_read": self.rows_read,
            "indexed": self.indexed,
            "failed": self.failed,
            "failures": [f.as_dict() for f in self.failures],
            "duplicates": self.duplicates,
            "live_count": self.live_count,
            "replaced_index": self.replaced_index,
            "abandoned_dropped": self.abandoned_dropped,
            "lock_taken_over_from": self.lock_taken_over_from,
            "lock_taken_over_because": self.lock_taken_over_because,
            "seconds": round(self.seconds, 3),
            "swapped": self.swapped,
            "dropped": self.dropped,
            "kept": self.kept,
            "error": self.error,
        }


class TooManyErrors(RunFailed):
    """More rows failed than ``--max-errors`` allows."""


class TooFewDocuments(RunFailed):
    """The new index holds too few documents next to the live one (``--min-ratio``)."""


def rebuild(
    definition: IndexDefinition,
    client: Any,
    options: RebuildOptions | None = None,
    progress: ProgressFactory | None = None,
) -> RebuildResult:
    """Rebuild the alias of ``definition`` from the database, without a gap in search.

    Raises RunFailed (alias untouched, new index deleted) or ConfigurationError.
    """
    options = options or RebuildOptions()
    result = RebuildResult(alias=definition.alias, definition=definition.path)
    started = time.monotonic()
    try:
        with hold_lock(client, definition.alias, options) as lock:
            if lock is not None and lock.took_over is not None:
                holder = lock.took_over
                result.lock_taken_over_from = f"{holder.host}:{holder.pid}"
                result.lock_taken_over_because = lock.took_over_because
            build_and_swap(definition, client, options, progress, result, lock)
    except RunFailed as exc:
        result.error = str(exc)
        exc.result = result
        raise
    except ReindexError:
        raise
    except Exception as exc:
        result.error = _describe(exc)
        raise RunFailed(f"{definition.alias}: {result.error}", result) from exc
    finally:
        result.seconds = time.monotonic() - started
    return result


def hold_lock(client: Any, alias: str, options: RebuildOptions) -> Any:
    """The alias's lock as a context manager (yielding None when locking is off)."""
    if not options.lock:
        return nullcontext(None)
    return AliasLock(client, alias, ttl=options.lock_ttl, index=options.lock_index)


def build_and_swap(
    definition: IndexDefinition,
    client: Any,
    options: RebuildOptions,
    progress: ProgressFactory | None,
    result: RebuildResult,
    lock: AliasLock | None,
) -> None:
    """The named steps: check, clear abandoned builds, create, load, verify, guard, swap, clean up."""
    alias = definition.alias
    old = result.old_indexes = check_alias(client, alias, options.replace_existing_index)
    if not old and options.replace_existing_index and indexes.is_concrete_index(client, alias):
        result.replaced_index = alias
    if lock is not None:
        result.abandoned_dropped = indexes.delete_owned(client, alias, indexes.abandoned_indexes(client, alias))
    queryset = definition.get_queryset()
    total = queryset.count()
    interrupts.check()
    result.new_index = create_new_index(client, definition)
    try:
        load(client, definition, queryset, result, options, progress, total)
        finish_settings(client, definition, result.new_index)
        verify(client, result)
        check_ratio(client, result, options)
        if lock is not None:
            lock.check()
        interrupts.check()  # the last safe point: after it the swap and its record go together
        replaced = [result.replaced_index] if result.replaced_index else []
        indexes.swap_alias(client, alias, result.new_index, old, remove_index=replaced)
        result.swapped = True
        indexes.mark_live(client, result.new_index)
    except BaseException:
        if not result.swapped:
            drop_new_index(client, result.new_index)
        raise
    result.dropped, result.kept = clean_up(client, alias, result.new_index, options.keep)


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
    meta = dict(mappings.get("_meta") or {})
    meta.update(indexes.owner_meta(definition.alias, definition.path, building=True, **definition_marker(definition)))
    mappings["_meta"] = meta
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


def load(
    client: Any,
    definition: IndexDefinition,
    queryset: Any,
    result: RebuildResult,
    options: RebuildOptions,
    progress: ProgressFactory | None,
    total: int,
) -> None:
    """Stream every row into the new index, in this process or in ``options.workers`` processes."""
    if options.workers > 1:
        from reindex.parallel import load_parallel

        load_parallel(definition, queryset, result, options, progress, total)
        return
    bar = progress(total, definition.alias) if progress else None
    with nullcontext() if bar is None else closing(bar):
        stream_rows(client, definition, queryset, result, options, bar)


def stream_rows(
    client: Any,
    definition: IndexDefinition,
    queryset: Any,
    result: RebuildResult,
    options: RebuildOptions,
    bar: Progress | None,
    after: Any = None,
) -> None:
    """Read ``queryset`` in batches and send its documents to ``result.new_index`` through the bulk helper.

    Requests go out on a thread while the next batch is built.
    ``after``: start the keyset past this primary key.
    """
    assert result.new_index is not None
    batch_size = options.batch_size or definition.batch_size or 1000

    def on_read(n: int) -> None:
        interrupts.check()
        result.rows_read += n

    def on_failure(failure: Failure) -> None:
        result.add_failure(failure)
        if options.on_failure is not None:
            options.on_failure(failure)
        if bar is not None:
            bar.update(1)
        check_failures(result, options.max_errors)

    def account(indexed: int, others: list[tuple[bool, dict[str, Any]]]) -> None:
        interrupts.check()
        result.indexed += indexed
        if bar is not None and indexed:
            bar.update(indexed)
        for ok, item in others:
            if ok and replaced_a_document(item):
                result.duplicates += 1
                if options.on_failure is not None:
                    options.on_failure(duplicate_failure(item))
            elif ok:
                result.indexed += 1
            else:
                on_failure(item_failure(item))

    bulk_options = {
        "chunk_size": batch_size,
        "max_chunk_bytes": options.max_chunk_bytes,
        "max_retries": options.max_retries,
        "initial_backoff": options.retry_backoff,
        "max_backoff": options.retry_backoff_max,
        "retry_on_status": RETRY_ON_STATUS,
    }
    actions = build_actions(
        definition, result.new_index, iter_batches(queryset, batch_size, after), on_read, on_failure
    )
    with BulkSender(client, bulk_options) as sender:
        for batch in chunked(actions, batch_size):
            sender.send(batch)
            account(*sender.take())
    account(*sender.take())


def chunked(actions: Iterator[Action], size: int) -> Iterator[list[Action]]:
    """Lists of ``size`` actions (the last may be shorter)."""
    while batch := list(itertools.islice(actions, size)):
        yield batch


def check_failures(result: RebuildResult, max_errors: int) -> None:
    """Raise TooManyErrors once more rows failed than ``max_errors`` allows."""
    if result.failed > max_errors:
        first = result.failures[0]
        raise TooManyErrors(
            f"{result.alias}: {result.failed} rows failed, more than --max-errors {max_errors} "
            f"(first: id {first.id}: {first.reason})"
        )


def duplicate_failure(item: dict[str, Any]) -> Failure:
    """The report of a document id that more than one row produced."""
    doc_id = next(iter(item.values())).get("_id")
    return Failure(doc_id, f"duplicate document id {doc_id}: a later row replaced an earlier one", "duplicate_id")


def finish_settings(client: Any, definition: IndexDefinition, index: str) -> None:
    """Restore the declared refresh interval and replicas, then refresh."""
    declared = definition.get_settings()
    restore = {key: declared.get(key) for key in LOAD_SETTINGS}  # None resets to the default
    client.indices.put_settings(index=index, settings={"index": restore})
    client.indices.refresh(index=index)


def verify(client: Any, result: RebuildResult) -> None:
    """The new index must hold exactly the documents that were accepted."""
    count = int(client.count(index=result.new_index)["count"])
    if result.indexed < count <= result.indexed + result.duplicates:
        # A bulk request resent after its response was lost reports "updated" for documents
        # whose first write was never counted: those were not duplicates.
        result.duplicates -= count - result.indexed
        result.indexed = count
    if count != result.indexed:
        raise RunFailed(f"{result.alias}: the new index holds {count} documents but {result.indexed} were indexed")


def check_ratio(client: Any, result: RebuildResult, options: RebuildOptions) -> None:
    """Refuse to swap when the new index holds fewer than ``min_ratio`` of the live documents."""
    if not (result.old_indexes or result.replaced_index):
        return
    result.live_count = live = int(client.count(index=result.alias)["count"])
    if options.force or result.indexed >= options.min_ratio * live:
        return
    raise TooFewDocuments(
        f"{result.alias}: the new index holds {result.indexed} documents, fewer than {options.min_ratio:g} "
        f"of the {live} in the live index; not swapping (an emptied table or a wrong database?). "
        "Pass --force if this is intended"
    )


def clean_up(client: Any, alias: str, new_index: str, keep: int) -> tuple[list[str], list[str]]:
    """Delete previous owned indexes of ``alias`` except the ``keep`` most recent."""
    previous = [i.name for i in indexes.previous_indexes(client, alias) if i.name < new_index]  # not a newer run's
    kept, drop = previous[:keep], previous[keep:]
    return indexes.delete_owned(client, alias, drop), kept


def drop_new_index(client: Any, name: str | None) -> None:
    """Best-effort delete of a half-built index; the run is failing anyway."""
    if not name:
        return
    with suppress(Exception):
        client.options(ignore_status=404).indices.delete(index=name)


def _describe(exc: BaseException) -> str:
    message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {message}"
