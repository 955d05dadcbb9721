"""Draining the change queue: claimed entries become one bulk request, acknowledged entry by entry.

``drain()`` claims a batch of an alias's entries (``reindex.queue.entries``), reads their
rows the way ``update`` and a rebuild read a batch (one query, on the database cursor for
a ``values()`` queryset, one more per ``related`` relation, ``load_batch()`` once:
``reindex.pipeline.changes``), builds their documents with the rebuild's batch builder
(``reindex.definitions.documents.build_batches``), deletes the documents of the rows gone
or filtered out, and sends it all as one bulk body through the rebuild's sender
(``reindex.server.sending.bulk_items``: 429s retried, a body too large halved). Each
entry's outcome is its own: confirmed entries are removed, an
entry whose row cannot be built or whose document the server rejects is retried with
back-off and dead after ``QUEUE_MAX_ATTEMPTS``, and entries the server could not take
at all (down, or items still rejected with 429/502/503/504 after the retries a load's
batch gets, ``reindex.server.sending``) are put back without counting an attempt::

    [result] = drain([ProductIndex()], client, Config.load())
    print(result.indexed, result.deleted, result.dead)

No lock: several drainers share the queue (``SKIP LOCKED``), and a rebuild may run
meanwhile. While one loads (the alias's lock is held and an index of the alias is
building), each batch is written to the live index *and* to the index being built, and
its entries are kept, due again ``QUEUE_POLL_INTERVAL`` seconds later, instead of
removed: the rebuild may still write a batch it read before the change. Drained again
once the new index is live, they reach it after every write of the rebuild. (The
indexes to write to are read after the claim, hence after the change was committed:
an index created later reads the row as changed. So they are looked up for every
batch, never kept from one to the next: a rebuild that took its lock and read the row
between a kept lookup and the claim would miss the change, and its swap would lose it.
The lookup is two requests: the lock, the alias.) Such an entry is marked as sent
there (``held_for``) and not sent again while that index builds, unless its row
changes; and what a batch writes into a building index is recorded before it is sent
(``ranges.record_queue_writes``), so that the rebuild's count check allows for it.

Each batch is sent on a thread of its own while the next one is claimed, read and
built (``Pipeline``), as a rebuild sends while it reads: the database is used from the
drainer's thread only, and a batch is acknowledged once its send came back.

A batch the database lets down halfway (SQLite's "database is locked" while a site's
transaction writes, a lost connection) is given back at once, its entries pending again
without an attempt counted (``entries.give_back``), rather than held until its lease
expires.
"""

from __future__ import annotations

import datetime
import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
from typing import Any, ClassVar, NoReturn, TypeVar

from reindex import interrupts
from reindex.config import Config
from reindex.database.rows import row_pk
from reindex.definitions.definition import IndexDefinition
from reindex.definitions.documents import Action, Failure, action_lines, build_batches, delete_actions, item_failure
from reindex.errors import ConfigurationError, DatabaseUnavailable, Interrupted, ReindexError, RunFailed, first_line
from reindex.executors.ranges import record_queue_writes
from reindex.operations.outcomes import RunOutcome
from reindex.pipeline.changes import change_batches
from reindex.pipeline.loading import keep_failure
from reindex.queue import entries as changequeue
from reindex.queue.throughput import record_drain_pass
from reindex.results import JsonResult, json_as
from reindex.server import indexes
from reindex.server.connection import describe_failure
from reindex.server.locking import read_holder
from reindex.server.retries import RETRY_ON_STATUS
from reindex.server.sending import BulkOptions, bulk_items

logger = logging.getLogger("reindex.drain")

T = TypeVar("T")


@dataclass(kw_only=True)
class DrainResult(RunOutcome, JsonResult):
    """What draining one alias's queue did: the report ``drain --json`` prints."""

    json_placed: ClassVar = {"seconds": ("error",)}

    alias: str
    definition: str
    batches: int = 0
    #: Entries claimed (an entry drained twice counts twice).
    claimed: int = 0
    indexed: int = 0
    deleted: int = 0
    #: Entries that failed and wait for another try, and those that failed for the last time.
    retried: int = 0
    dead: int = 0
    #: Entries put back without an attempt: the server could not take them.
    released: int = 0
    #: Entries written while a rebuild loads, kept to be drained again once it swapped.
    replaying: int = 0
    #: Entries another drainer took over after this one's lease expired (queued again).
    lost_claims: int = 0
    failures: list[Failure] = field(default_factory=list)
    seconds: float = field(default=0.0, metadata=json_as(rounded=3))

    @property
    def failed(self) -> int:
        """Entries that failed in this drain (retried later or dead)."""
        return self.retried + self.dead

    def add_failure(self, failure: Failure) -> None:
        keep_failure(self.failures, failure)


def drain(
    definitions: list[IndexDefinition],
    client: Any,
    config: Config,
    *,
    loop: bool = False,
    max_seconds: float | None = None,
) -> list[DrainResult]:
    """Drain the queues of ``definitions`` until they hold nothing due, or forever with ``loop``.

    ``loop``: sleep ``QUEUE_POLL_INTERVAL`` when nothing is due and go on, until
    ``max_seconds`` pass or a signal (inside ``interrupts.signals_raise_interrupted()``)
    ends it between batches. A batch the server could not take leaves its error in the
    alias's result and, with ``loop``, is tried again after the poll interval.
    """
    results = [DrainResult(alias=d.alias, definition=d.path) for d in definitions]
    started = time.monotonic()
    deadline = None if max_seconds is None else started + max_seconds
    # A pass takes what was queued before it started: on a busy site the one-off drain ends.
    until = None if loop else changequeue.clock()
    migrated = False
    try:
        while True:
            migrated = migrated or queue_migrated()
            busy = False
            for definition, result in zip(definitions, results, strict=True):
                error = result.error
                with recorded_pass(client, definition.alias, result, config):  # recorded last
                    try:
                        busy = drain_alias(definition, client, config, result, deadline, until) or busy
                    finally:  # also when a signal ends it right after the batch that ended the outage
                        if loop and result.error != error:  # a worker's log shows an outage once, and its end
                            logger.warning("%s", result.error or f"{definition.alias}: draining again")
            if not loop or _past(deadline):
                break
            if not busy:
                interrupts.sleep(config.queue_poll_interval)
    except Interrupted:
        pass  # a worker asked to stop: the batch under way was finished
    finally:
        for result in results:
            result.seconds = time.monotonic() - started
    return results


def queue_migrated() -> bool:
    """Check that ``migrate reindex`` ran (ConfigurationError if not); False while the database cannot be reached.

    The claim that follows meets the same outage and reports it; the next poll checks again.
    """
    try:
        with changequeue.database_errors("the queue"):
            changequeue.check_migrated()
    except DatabaseUnavailable:
        return False
    return True


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def drain_alias(
    definition: IndexDefinition,
    client: Any,
    config: Config,
    result: DrainResult,
    deadline: float | None = None,
    until: datetime.datetime | None = None,
) -> bool:
    """Drain the due entries of one alias (queued before ``until``), batch after batch; return whether it claimed any.

    Each batch is sent while the next one is claimed, read and built (``Pipeline``). A
    batch that fails as a whole (server down: RunFailed; alias not built:
    ConfigurationError) is put back and ends the pass with its error in ``result``.
    An empty claim while entries are left (skipped because another drainer's claim
    held them that moment) is tried again, for at most ``QUEUE_LEASE`` seconds.
    """
    batch_size = config.batch_size_for(definition)
    claimed_any = False
    skipped_since: float | None = None

    def take() -> changequeue.Claimed:
        return changequeue.claim(definition.alias, batch_size, config.queue_lease, changed_before=until)

    with QueueThread.for_queue(config) as queue, Pipeline() as pipeline:
        while not _past(deadline):
            interrupts.check()
            try:
                with changequeue.database_errors(definition.alias):
                    queue.settle_acknowledged()
                    claimed = queue.claimed(take)
                    left = not claimed.entries and changequeue.claimable(definition.alias, until)
            except DatabaseUnavailable as exc:
                _note(result, exc)
                break
            if isinstance(result.exception, DatabaseUnavailable):  # it answers again
                result.error = result.exception = None
            under_way = pipeline.under_way
            if not claimed.entries and under_way is not None:
                if not _step(result, definition.alias, pipeline.finish):
                    break
                if under_way.put_back_any:  # they may be due again at once (a failure without back-off)
                    continue
            if not claimed.entries:
                skipped_since = skipped_since or time.monotonic()
                if not left or time.monotonic() - skipped_since > config.queue_lease:
                    break
                interrupts.sleep(0.05)
                continue
            skipped_since = None
            claimed_any = True
            result.batches += 1
            result.claimed += len(claimed.entries)
            if not _past(deadline):
                # The next batch's claim, written while this one is read and built.
                queue.claim_ahead(take, full=len(claimed.entries) >= batch_size)
            batch = Batch(definition, client, config, claimed, result, queue=queue)
            if not _step(result, definition.alias, partial(pipeline.hand_over, batch)):
                break  # not built, server down: this alias waits, the others go on
            result.error = result.exception = None
        _step(result, definition.alias, pipeline.finish)
        _step(result, definition.alias, lambda: queue.settle_acknowledged(wait=True))
    return claimed_any


def _step(result: DrainResult, alias: str, step: Callable[[], None]) -> bool:
    """Run ``step``; False, its error noted in ``result``, when it failed (Interrupted goes on up)."""
    try:
        with changequeue.database_errors(alias):
            step()
    except Interrupted:
        raise
    except ReindexError as exc:
        _note(result, exc)
        return False
    return True


class Pipeline:
    """A pass's batches, each sent on a thread of its own while the next is claimed, read and built.

    The rebuild's overlap (``reindex.server.sending``): the database's work and the
    building of documents on this thread, the requests to the server on the other. The
    database is only ever used from this thread: the sender thread sends a bulk body
    and reads its items, nothing else. One batch at most is under way, so a row's
    documents reach the server in the order its batches were claimed, and a batch is
    acknowledged only once its send came back (``Batch.complete``). On the way out
    (end of the pass, an error, a signal) the batch under way is finished first.
    """

    def __init__(self) -> None:
        self.under_way: Batch | None = None
        self.sent: Future[Sent] | None = None
        self.sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reindex-drain")

    def hand_over(self, batch: Batch) -> None:
        """Read and build ``batch``, start sending it, and settle the batch sent before it."""
        batch.guarded(batch.prepare)
        previous, sent = self.under_way, self.sent
        self.under_way = self.sent = None
        if previous is not None and sent is not None:
            try:
                outcome = previous.guarded(lambda: previous.wait(sent))
            except BaseException:
                batch.guarded(batch.abandon_unsent)
                raise
        self.under_way, self.sent = batch, self.sender.submit(batch.send)
        if previous is not None:
            previous.guarded(lambda: previous.complete(outcome))

    def finish(self) -> None:
        """Settle the batch under way, once its send came back."""
        batch, sent = self.under_way, self.sent
        self.under_way = self.sent = None
        if batch is not None and sent is not None:
            outcome = batch.guarded(lambda: batch.wait(sent))
            batch.guarded(lambda: batch.complete(outcome))

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        try:
            batch = self.under_way
            if exc_type is not None and batch is not None:  # a signal: the batch under way is finished
                _step(batch.result, batch.definition.alias, self.finish)
        finally:
            self.sender.shutdown(wait=True)


class QueueThread:
    """Where a drain's claims and acknowledgements run: on PostgreSQL, a thread and connection of their own.

    The claim of the next batch (an ``UPDATE`` of a thousand rows) and the
    acknowledgement of the batch before (a ``DELETE``) are written by PostgreSQL while
    this thread reads and builds a batch, as the sender thread overlaps the send: they
    were half of a drain's time on the drainer's path. Only these two statements go
    there, one at a time and in order (a single thread), and a batch given back because
    the database let the drainer down (its own connection may be the broken one);
    everything else, the rows' reads and the rarer writes of a batch (releases,
    failures), stays on the drainer's thread and connection.

    The thread (and its connection) starts with the first claim that comes back full: a
    pass that finds a batch or less, as most polls of ``drain --loop`` and the stream's
    rounds do, claims and acknowledges in line and opens no connection. Always in line on
    SQLite (its work is this process's own CPU, and a second connection would wait for
    the first one's lock), on MariaDB, and inside a transaction (a second connection
    would not see its entries).
    """

    def __init__(self, may_thread: bool, using: str, lease: float) -> None:
        self.using, self.lease, self.may_thread = using, lease, may_thread
        self.thread: ThreadPoolExecutor | None = None
        self.ahead: Future[changequeue.Claimed] | None = None
        self.acknowledging: list[tuple[Future[Acknowledged], DrainResult]] = []

    @classmethod
    def for_queue(cls, config: Config) -> QueueThread:
        from django.db import connections

        using = changequeue.queue_database()
        connection = connections[using]
        return cls(connection.vendor == "postgresql" and not connection.in_atomic_block, using, config.queue_lease)

    def run(self, step: Callable[[], T]) -> Future[T]:
        """``step()`` on the queue's thread (its result or error in the future), or here and now."""
        if self.thread is not None:
            return self.thread.submit(_closing_broken, step)
        done: Future[T] = Future()
        try:
            done.set_result(step())
        except BaseException as exc:  # raised again by result(), as the thread's error would be
            done.set_exception(exc)
        return done

    def claim_ahead(self, take: Callable[[], changequeue.Claimed], full: bool) -> None:
        """After a claim (``full``: it took a whole batch), start the next one on the thread, where it may run."""
        if self.thread is None and self.may_thread and full:
            self.thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="reindex-queue")
        if self.thread is not None:
            self.ahead = self.run(take)

    def claimed(self, take: Callable[[], changequeue.Claimed]) -> changequeue.Claimed:
        """The claim started ahead, or a claim made now."""
        ahead, self.ahead = self.ahead, None
        return (ahead or self.run(take)).result()

    def acknowledge(self, entries: list[Any], token: str, result: DrainResult) -> None:
        """Acknowledge ``entries`` (on the thread: settled in ``result`` by ``settle_acknowledged``)."""
        self.acknowledging.append((self.run(partial(_acknowledged, entries, token, self.lease)), result))

    def settle_acknowledged(self, *, wait: bool = False) -> None:
        """Count what the acknowledgements done (all of them with ``wait``) came to; raise the first one's error.

        An acknowledgement the database let down gave its batch back (``_acknowledged``).
        """
        pending, error = [], None
        for done, of in self.acknowledging:
            if wait or done.done():
                acknowledged = done.result()
                of.lost_claims += len(acknowledged.lost)
                of.released += acknowledged.given_back
                error = error or acknowledged.error
            else:
                pending.append((done, of))
        self.acknowledging = pending
        if error is not None:
            raise error

    def __enter__(self) -> QueueThread:
        return self

    def __exit__(self, *exc: Any) -> None:
        """Give back a claim made ahead and not used; wait for the acknowledgements; close the thread's connection."""
        try:
            ahead, self.ahead = self.ahead, None
            if ahead is not None:  # given back through the connection that claimed it
                claimed = ahead.result()
                self.run(partial(changequeue.give_back, claimed.entries, claimed.token, 0.0)).result()
        except Exception as error:  # the entries wait for their lease to expire
            logger.warning("a claim made ahead could not be given back: %s", first_line(error))
        finally:
            try:
                self.settle_acknowledged(wait=True)  # counted even when a signal ends the pass
            except Exception as error:  # already in the result when the pass ended normally
                logger.debug("an acknowledgement failed: %s", first_line(error))
            if self.thread is not None:
                self.thread.submit(_close_connection, self.using)
                self.thread.shutdown(wait=True)


@dataclass
class Acknowledged:
    """What acknowledging a batch came to: the claims found lost, or the error that stopped it."""

    lost: list[Any] = field(default_factory=list)
    given_back: int = 0
    error: Exception | None = None


def _acknowledged(entries: list[Any], token: str, lease: float) -> Acknowledged:
    """Acknowledge ``entries``; if the database lets it down, give the batch back (as ``Batch.guarded`` does)."""
    from django.db import InterfaceError, OperationalError, close_old_connections

    try:
        return Acknowledged(lost=changequeue.acknowledge(entries, token))
    except (OperationalError, InterfaceError) as exc:
        given_back = changequeue.give_back_after(exc, entries, token, lease)
        close_old_connections()  # a connection the database broke: the next query reconnects
        return Acknowledged(given_back=len(entries) if given_back else 0, error=exc)


def _closing_broken(step: Callable[[], T]) -> T:
    """``step()`` on the queue's thread; a connection the database broke is closed (the next query reconnects)."""
    from django.db import InterfaceError, OperationalError, close_old_connections

    try:
        return step()
    except (OperationalError, InterfaceError):
        close_old_connections()
        raise


def _close_connection(using: str) -> None:
    from django.db import connections

    connections[using].close()


@contextmanager
def recorded_pass(client: Any, alias: str, result: DrainResult, config: Config) -> Iterator[None]:
    """Around one pass over an alias: record its rate once it ends, if it drained any (``reindex.queue.throughput``).

    Recorded last, after the pass's own work and log line, even when a signal ends it.
    """
    started, before = time.monotonic(), _settled(result)
    try:
        yield
    finally:
        settled = _settled(result) - before
        if settled:
            record_drain_pass(client, alias, settled, time.monotonic() - started, config.lock_index)


def _settled(result: DrainResult) -> int:
    """Entries of ``result`` drained so far: claimed, less those put back as they were or kept for a rebuild."""
    return result.claimed - result.released - result.replaying


def _note(result: DrainResult, exc: ReindexError) -> None:
    result.error, result.exception = str(exc), exc


#: What the sender thread brings back of a batch: its entries the server could not take now
#: (429 and the like still, after the retries), and those whose document it rejected; each with why.
Sent = tuple[dict[str, str], dict[str, str]]


@dataclass
class Batch:
    """One claimed batch under way: its entries by primary key, the documents built, the outcomes.

    ``prepare()`` (this thread: the database), ``send()`` (the sender thread: the server
    only), ``complete()`` (this thread: each entry settled on its document's result).
    """

    definition: IndexDefinition
    client: Any
    config: Config
    claimed: changequeue.Claimed
    result: DrainResult
    keyed: dict[str, tuple[Any, Any]] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    targets: Targets | None = None
    held: set[str] = field(default_factory=set)
    lines: list[bytes] = field(default_factory=list)
    owners: list[str] = field(default_factory=list)
    built: int = 0
    gone: int = 0
    indexed: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)
    #: Entries of the batch were put back to be tried again (failed, or the server could not take them).
    put_back_any: bool = False
    #: Where its acknowledgement runs (``QueueThread``); here and now without one.
    queue: QueueThread | None = None

    def guarded(self, step: Callable[[], T]) -> T:
        """Run ``step``; a batch the database lets down is given back at once.

        Raises OperationalError (the caller's ``database_errors`` names it) after giving the
        batch back (see ``reindex.queue.entries.give_back``) through the queue's connection,
        which claimed it (``QueueThread``).
        """
        from django.db import InterfaceError, OperationalError

        try:
            return step()
        except (OperationalError, InterfaceError) as exc:
            entries = self.claimed.entries
            give_back = partial(changequeue.give_back_after, exc, entries, self.claimed.token, self.config.queue_lease)
            # Through the connection that claimed them: this one may be the one the database broke.
            if self.queue.run(give_back).result() if self.queue is not None else give_back():
                self.result.released += len(entries)
            raise

    def prepare(self) -> None:
        """Find where the batch goes, read and build its documents: the bulk body's lines, ready to send."""
        from django.db import InterfaceError, OperationalError

        self.keyed, self.failed = self.keys()
        try:
            self.targets = targets = write_targets(self.client, self.definition.alias, self.config)
            self.held = self.held_keys(targets)
            pks = [pk for key, (_, pk) in self.keyed.items() if pk is not None and key not in self.held]
            built, gone, unbuilt = self.documents(targets.all[0], pks)
        except (OperationalError, InterfaceError):
            raise  # the database: the batch is given back as a whole
        except Exception as exc:
            self.abandon(exc)
        self.failed.update({key: reason for key, reason in unbuilt.items() if key in self.keyed})
        self.lines, self.owners = self.action_lines(targets, built, gone)
        self.built, self.gone = len(built), len(gone)
        self.indexed, self.deleted = {key for key, _ in built}, {str(pk) for pk in gone}

    def send(self) -> Sent:
        """On the sender thread: the batch's writes recorded for a building index, its body sent, its items read."""
        assert self.targets is not None
        for index in (
            self.targets.building if self.lines else ()
        ):  # recorded before they are sent: see ranges.QueueWrites
            record_queue_writes(self.client, self.config.lock_index, index, self.built, self.gone)
        items = bulk_items(self.client, self.lines, BulkOptions.from_config(self.config))
        return self.outcomes(items, self.owners)

    def wait(self, sent: Future[Sent]) -> Sent:
        """What the send brought back; a send that failed puts the batch back and raises (see ``abandon``)."""
        try:
            return sent.result()
        except Exception as exc:
            self.abandon(exc)

    def complete(self, outcome: Sent) -> None:
        """Settle each entry on its document's result: acknowledged, kept for a rebuild, failed, or put back."""
        assert self.targets is not None
        transient, rejected = outcome
        failed = self.failed
        for key, reason in rejected.items():
            failed.setdefault(key, reason)
        done = [key for key in self.keyed if key not in failed and key not in transient]
        self.result.indexed += len(self.indexed.intersection(done))
        self.result.deleted += len(self.deleted.intersection(done))
        self.settle(done, self.targets, self.held)
        self.put_back(list(transient), next(iter(transient.values()), ""), failed)
        self.put_back_any = bool(transient or failed)

    def abandon(self, exc: BaseException) -> NoReturn:
        """Put the batch back after ``exc`` (the server down, the alias not built, a signal) and raise.

        Entries that failed on their own (no row can have their key, their row cannot be
        built) count an attempt; the others are put back without one.
        """
        keys = [key for key in self.keyed if key not in self.failed]
        if isinstance(exc, (ConfigurationError, Interrupted)):
            self.put_back(keys, "", self.failed)
            raise exc
        reason = describe_failure(exc)
        self.put_back(keys, reason, self.failed)
        raise RunFailed(f"{self.definition.alias}: {reason}; the batch stays queued") from exc

    def abandon_unsent(self) -> None:
        """Put back a batch built but not sent, because the batch before it failed as a whole."""
        self.put_back([key for key in self.keyed if key not in self.failed], "", self.failed)

    def documents(self, index: str, pks: list[Any]) -> tuple[list[tuple[str, Action]], list[Any], dict[str, str]]:
        """The rows of ``pks`` read and built as a load's batch is, into ``index``: ``(entry key, action)`` of
        each row built, the primary keys no row has (their documents go), and why each other row failed.

        One query for the rows (on the cursor for a ``values()`` queryset), one per ``related``
        relation, ``load_batch()`` once: ``reindex.pipeline.changes.change_batches`` and
        ``reindex.definitions.documents.build_batches``, as ``update`` reads and builds.
        """
        from django.db import DatabaseError

        definition = self.definition
        if not pks:
            return [], [], {}
        rows, gone = next(change_batches(definition.get_queryset(), [pks], cursor=definition.cursor_reads))
        keys = [str(row_pk(row)) for row in rows]
        failures: list[Failure] = []
        try:
            actions = [
                action
                for batch in build_batches(definition, index, [rows] if rows else [], _counted, failures.append)
                for action in batch
            ]
        except (ReindexError, DatabaseError):
            raise
        except Exception as exc:  # load_batch(): no row of the batch can be built
            why = f"load_batch(): {type(exc).__name__}: {exc}"
            return [], gone, {key: why for key in keys}
        unbuilt = {str(failure.id): failure.reason for failure in failures}
        built = [key for key in keys if key not in unbuilt]
        return list(zip(built, actions, strict=True)), gone, unbuilt

    def held_keys(self, targets: Targets) -> set[str]:
        """The entries sent to these very building indexes by an earlier drain and not changed since: not sent again."""
        if not targets.building:
            return set()
        marker = targets.marker
        return {key for key, (entry, _) in self.keyed.items() if entry.held_for == marker}

    def keys(self) -> tuple[dict[str, tuple[Any, Any]], dict[str, str]]:
        """The claimed entries (and primary keys) by the text of their primary key; failures for ids no row can have."""
        keyed: dict[str, tuple[Any, Any]] = {}
        failed: dict[str, str] = {}
        for entry in self.claimed.entries:
            try:
                pk = self.definition.pk_field.to_python(entry.object_id)
            except Exception as exc:
                failed[entry.object_id] = f"no row can have the primary key {entry.object_id!r}: {exc}"
                keyed[entry.object_id] = (entry, None)
                continue
            keyed[str(pk)] = (entry, pk)
        return keyed, failed

    def action_lines(
        self, targets: Targets, built: list[tuple[str, Action]], gone: list[Any]
    ) -> tuple[list[bytes], list[str]]:
        """Each action's NDJSON lines, for every index written to, and the entry key of each action."""
        lines: list[bytes] = [action_lines(action) for _, action in built]
        owners: list[str] = [key for key, _ in built]
        for index in targets.all[1:]:  # the indexes a rebuild is loading: the same documents
            for key, (header, data) in built:
                lines.append(action_lines(({"index": {"_index": index, "_id": header["index"]["_id"]}}, data)))
                owners.append(key)
        for index in targets.all:
            ids = [self.definition.id_from_pk(pk) for pk in gone]
            lines += map(action_lines, delete_actions(index, ids))
            owners += [str(pk) for pk in gone]
        return lines, owners

    @staticmethod
    def outcomes(items: list[dict[str, Any]], owners: list[str]) -> Sent:
        """The entries the server could not take now, and those whose document it rejected (each with why)."""
        transient: dict[str, str] = {}
        rejected: dict[str, str] = {}
        for item, key in zip(items, owners, strict=True):
            op, answer = next(iter(item.items()))
            status = int(answer.get("status", 500))
            if 200 <= status < 300 or (op == "delete" and status == 404):
                continue
            reason = item_failure(item).reason
            if status in RETRY_ON_STATUS:
                transient[key] = reason
            else:
                rejected.setdefault(key, reason)
        return transient, rejected

    def settle(self, done: list[str], targets: Targets, held: set[str]) -> None:
        """Acknowledge the entries done, or keep them for replay while a rebuild loads (marked as sent there)."""
        entries = [self.keyed[key][0] for key in done]
        if targets.building:
            token, delay = self.claimed.token, self.config.queue_poll_interval
            changequeue.release(entries, token, delay, held_for=targets.marker)
            self.result.replaying += len([key for key in done if key not in held])
        elif self.queue is not None:
            self.queue.acknowledge(entries, self.claimed.token, self.result)
        else:
            self.result.lost_claims += len(changequeue.acknowledge(entries, self.claimed.token))

    def put_back(self, keys: list[str], reason: str, failed: dict[str, str]) -> None:
        """Release the entries of ``keys`` without an attempt; fail those of ``failed``, an attempt each."""
        token, result = self.claimed.token, self.result
        if keys:
            changequeue.release([self.keyed[key][0] for key in keys], token, self.config.queue_backoff, reason)
            result.released += len(keys)
        dead = changequeue.fail([(self.keyed[key][0], why) for key, why in failed.items()], token, self.config)
        result.dead += dead
        result.retried += len(failed) - dead
        for key, why in failed.items():
            result.add_failure(Failure(key, why, "queue"))


@dataclass
class Targets:
    """Where a batch goes: the live index, and the indexes a rebuild is loading now."""

    live: list[str]
    building: list[str]

    @property
    def all(self) -> list[str]:
        return [*self.live, *self.building]

    @property
    def marker(self) -> str:
        """What an entry sent to the building indexes keeps in ``held_for``."""
        return ",".join(sorted(self.building))[:255]


def write_targets(client: Any, alias: str, config: Config) -> Targets:
    """The live index of ``alias`` and, while a rebuild holds its lock, the indexes it is building.

    Raises ConfigurationError when there is neither (the alias was never built).
    """
    building: list[str] = []
    holder = read_holder(client, alias, config.lock_index)
    if holder is not None and holder.age() < config.lock_ttl:
        building = [info.name for info in indexes.owned_indexes(client, alias, with_counts=False) if info.building]
    try:
        live = [indexes.serving_index(client, alias)]
    except ConfigurationError:
        if not building:
            raise
        live = []
    return Targets(live, building)


def _counted(rows: int) -> None:
    """A drain counts entries, not rows read."""
