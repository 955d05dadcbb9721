"""``reindex stream``: follow each alias's replication slot and send the documents its changes touch.

A round reads up to ``STREAM_BATCH`` changes (whole transactions) from the slot
without consuming them (``pg_logical_slot_peek_binary_changes``), turns the changed
rows into the primary keys of the documents they touch (``reindex.stream.routes``: a
row changed ten times in the round is one document), and sends those documents in
batches of ``BATCH_SIZE`` the way ``drain`` does (``reindex.queue.draining.Batch``:
the rows read through the definition, built by the rebuild's builder, one bulk body
per batch, into the index a rebuild is loading too). Only then is the slot moved on
past the round's last transaction (``pg_replication_slot_advance``): a consumer killed
at any moment loses nothing and sends at most one round again, and while the search
server is down the slot stays where it is.

What the stream cannot finish itself goes to the change queue, and the stream drains
the queue between rounds (the same retries, dead entries and replays as ``drain``):

- a document the server rejects: queued with an attempt counted (dead after
  ``QUEUE_MAX_ATTEMPTS``), the others go on, the slot moves on;
- a document sent while a rebuild loads: queued to be sent again once the new index
  is live (``held_for``), as ``drain`` does;
- a TRUNCATE of the definition's own table: its documents are removed by a ``sweep``
  (which takes the alias's lock: during a rebuild the round waits and is read again);
  of a table it watches: every document of the alias is sent again in that round.

One consumer per slot: a PostgreSQL advisory lock held by the consumer's session
(released when its connection ends, ``kill -9`` included); a second one is refused
(``StreamBusy``, exit 3).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

from reindex import interrupts
from reindex.config import Config
from reindex.definitions.definition import IndexDefinition
from reindex.definitions.documents import Failure
from reindex.errors import DatabaseUnavailable, Interrupted, ReindexError, RunFailed, StreamBusy, first_line
from reindex.operations.outcomes import RunOutcome
from reindex.pipeline.loading import keep_failure
from reindex.queue import entries as changequeue
from reindex.queue.draining import Batch, DrainResult, Pipeline, Targets, drain_alias, queue_migrated
from reindex.results import JsonResult, json_as
from reindex.stream.decoding import Decoder, Transaction, lsn_text, lsn_value
from reindex.stream.routes import Routes
from reindex.stream.slots import slot_name

logger = logging.getLogger("reindex.stream")
T = TypeVar("T")

#: The advisory lock's first key: "REIX". The second is the slot name's hash.
_LOCK_CLASS = 0x52454958

#: PostgreSQL's "object in use": another session reads the slot (``slot status`` peeks at it).
_IN_USE = "55006"
#: How often, and how many seconds apart, a round tries a slot another session reads, before it is an outage.
_IN_USE_TRIES, _IN_USE_WAIT = 20, 0.05


def _in_use(exc: Exception) -> bool:
    cause = exc.__cause__
    return (getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)) == _IN_USE


@dataclass(kw_only=True)
class StreamResult(RunOutcome, JsonResult):
    """What following one alias's slot did: the report ``stream --json`` prints."""

    json_placed: ClassVar = {"seconds": ("error",)}

    alias: str
    definition: str
    slot: str
    rounds: int = 0
    transactions: int = 0
    #: Rows changed (and tables truncated) in those transactions that the alias's documents come from.
    changes: int = 0
    #: Documents the changes touched (each once a round).
    documents: int = 0
    batches: int = 0
    indexed: int = 0
    deleted: int = 0
    #: Documents the server rejected or whose rows failed to build: queued, an attempt counted.
    failed: int = 0
    dead: int = 0
    #: Documents sent while a rebuild loads: queued to be sent again once its index is live.
    replaying: int = 0
    #: Documents the server could not take this moment: queued without an attempt.
    deferred: int = 0
    truncated: list[str] = field(default_factory=list)
    #: Where the slot was moved to last (the end of the last transaction sent).
    confirmed_lsn: str | None = None
    #: The change queue drained between rounds (retries, replays after a swap).
    queue: DrainResult | None = None
    failures: list[Failure] = field(default_factory=list)
    seconds: float = field(default=0.0, metadata=json_as(rounded=3))


class StreamBatch(Batch):
    """A drain batch whose entries come from the log, not from the queue: nothing to claim or acknowledge."""

    def __init__(self, definition: IndexDefinition, client: Any, config: Config, keys: list[str]) -> None:
        entries = [changequeue.Entry(0, definition.alias, key, 0) for key in keys]
        super().__init__(
            definition, client, config, changequeue.Claimed("", entries), DrainResult(alias="", definition="")
        )
        self.transient: dict[str, str] = {}
        self.rejected: dict[str, str] = {}
        self.building: Targets | None = None
        self.done: list[str] = []

    def guarded(self, step: Callable[[], T]) -> T:
        return step()  # nothing claimed to give back: the round is read again

    def held_keys(self, targets: Targets) -> set[str]:
        return set()  # every change in the log is new to every index

    def settle(self, done: list[str], targets: Targets, held: set[str]) -> None:
        self.done = done
        if targets.building:
            self.building = targets

    def put_back(self, keys: list[str], reason: str, failed: dict[str, str]) -> None:
        self.transient.update(dict.fromkeys(keys, reason))
        self.rejected.update(failed)


class Follower:
    """One alias's slot, read round after round by this process."""

    def __init__(self, definition: IndexDefinition, client: Any, config: Config, using: str) -> None:
        self.definition, self.client, self.config, self.using = definition, client, config, using
        self.slot = slot_name(definition.alias)
        self.routes = Routes.of(definition, using)
        self.result = StreamResult(alias=definition.alias, definition=definition.path, slot=self.slot)
        self.locked_by: Any = None
        #: With ``once``: the log's end when the run started; the alias is done once the slot passed it.
        self.until: int | None = None
        #: With ``once``: the queue's entries drained are those queued before the run started.
        self.queue_until: Any = None
        self.caught_up = False

    def lock(self) -> None:
        """Take the slot's advisory lock for this session (StreamBusy when another consumer has it)."""
        from django.db import connections

        connection = connections[self.using]
        connection.ensure_connection()
        if self.locked_by is connection.connection:
            return
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, hashtext(%s))", [_LOCK_CLASS, self.slot])
            (taken,) = cursor.fetchone()
            if not taken:
                cursor.execute(
                    "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND classid = %s"
                    " AND objid = hashtext(%s)::oid AND granted",
                    [_LOCK_CLASS, self.slot],
                )
                holder = cursor.fetchone()
                where = f" (PostgreSQL process {holder[0]})" if holder else ""
                raise StreamBusy(
                    f"{self.definition.alias}: another `reindex stream` follows the slot {self.slot}{where}",
                    alias=self.definition.alias,
                )
        self.locked_by = connection.connection

    def round(self) -> bool:
        """Read, send and confirm one round of the slot; whether it held anything for the alias."""
        with changequeue.database_errors(self.definition.alias), self.slot_errors():
            self.lock()
            read_to = self.log_end()
            transactions, whole = self.peek()
        end = transactions[-1].end_lsn if transactions else None
        if whole and (end is None or lsn_value(end) < read_to):
            # The slot held nothing more up to ``read_to``: confirming it lets PostgreSQL drop
            # the WAL of the tables the alias does not read (a transaction under way then
            # is still read whole once it commits).
            end = lsn_text(read_to)
        if transactions:
            self.send_round(transactions)
        if end is not None and (
            self.result.confirmed_lsn is None or lsn_value(end) > lsn_value(self.result.confirmed_lsn)
        ):
            with changequeue.database_errors(self.definition.alias), self.slot_errors():
                self.confirm(end)
        if self.until is not None and (not transactions or lsn_value(end or "0/0") >= self.until):
            self.caught_up = True
        return bool(transactions)

    @contextmanager
    def slot_errors(self) -> Iterator[None]:
        """The slot refused (dropped, invalidated by ``max_slot_wal_keep_size``): RunFailed with PostgreSQL's reason."""
        from django.db import DatabaseError, InterfaceError, OperationalError

        try:
            yield
        except (OperationalError, InterfaceError):
            raise  # an outage: database_errors names it
        except DatabaseError as exc:
            reason = first_line(exc)
            raise RunFailed(f"{self.definition.alias}: the slot {self.slot}: {reason}") from exc

    def send_round(self, transactions: list[Transaction]) -> None:
        result = self.result
        result.rounds += 1
        result.transactions += len(transactions)
        changes = [change for transaction in transactions for change in transaction.changes]
        with changequeue.database_errors(self.definition.alias):
            keys, truncated = self.routes.keys(changes)
            result.changes += sum(1 for change in changes if change.table in self.routes.by_table)
            for table in truncated:
                keys.update(self.truncated(table))
            # Integer keys in numeric order ("9" before "10"): a batch of close keys reads its
            # related rows by range, as a drain's batch does, not by a list of 1,000 keys.
            self.send(sorted(keys, key=lambda key: (len(key), key)))

    def peek(self) -> tuple[list[Transaction], bool]:
        """The transactions the slot holds, up to ``STREAM_BATCH`` changes; and whether that was all of them."""
        rows = self.on_slot(
            "SELECT data FROM pg_logical_slot_peek_binary_changes(%s, NULL, %s,"
            " 'proto_version', '1', 'publication_names', %s)",
            [self.slot, self.config.stream_batch, self.slot],
        )
        return Decoder().decode(row[0] for row in rows), len(rows) < self.config.stream_batch

    def on_slot(self, sql: str, params: list[Any]) -> list[Any]:
        """Run ``sql`` on the slot; while another session reads it this moment, again a little later.

        ``slot status`` (and so the health endpoint and Prometheus) peeks at the slot too,
        and PostgreSQL lets one session use a slot at a time: that is no outage.
        """
        from django.db import OperationalError, connections

        tries = 0
        while True:
            try:
                with connections[self.using].cursor() as cursor:
                    cursor.execute(sql, params)
                    return list(cursor.fetchall())
            except OperationalError as exc:
                tries += 1
                if not _in_use(exc) or tries >= _IN_USE_TRIES:
                    raise
            interrupts.sleep(_IN_USE_WAIT)

    def log_end(self) -> int:
        """Where the log ends now."""
        from django.db import connections

        with changequeue.database_errors(self.definition.alias), connections[self.using].cursor() as cursor:
            cursor.execute("SELECT pg_current_wal_lsn()::text")
            return lsn_value(cursor.fetchone()[0])

    def send(self, keys: list[str]) -> None:
        """Send the documents of ``keys`` in batches, each sent while the next is read and built (drain's
        ``Pipeline``); what the server could not take goes to the queue.

        RunFailed (the server down): nothing is confirmed, the round is read again.
        """
        result = self.result
        size = self.config.batch_size_for(self.definition)
        result.documents += len(keys)
        batches = []
        with Pipeline() as pipeline:
            for start in range(0, len(keys), size):
                interrupts.check()
                batches.append(StreamBatch(self.definition, self.client, self.config, keys[start : start + size]))
                pipeline.hand_over(batches[-1])
            pipeline.finish()
        for batch in batches:
            self.settle(batch)

    def settle(self, batch: StreamBatch) -> None:
        """Count a batch sent, and queue what it could not finish: replays for a rebuild, retries, failures."""
        result, alias = self.result, self.definition.alias
        result.batches += 1
        result.indexed += batch.result.indexed
        result.deleted += batch.result.deleted
        if batch.building is not None:
            changequeue.hand_over(alias, batch.done, self.config.queue_poll_interval, held_for=batch.building.marker)
            result.replaying += len(batch.done)
        if batch.transient:
            reason = next(iter(batch.transient.values()))
            changequeue.hand_over(alias, list(batch.transient), self.config.queue_backoff, reason)
            result.deferred += len(batch.transient)
        if batch.rejected:
            result.failed += len(batch.rejected)
            result.dead += changequeue.isolate(alias, sorted(batch.rejected.items()), self.config)
            for key, why in batch.rejected.items():
                keep_failure(result.failures, Failure(key, why, "stream"))

    def truncated(self, table: str) -> list[str]:
        """A TRUNCATE: the own table's documents are swept; a watched table's sends every document again."""
        from reindex.operations.sweeping import sweep

        self.result.truncated.append(table)
        if table == self.routes.own_table:
            logger.warning("%s: %s was truncated: removing the documents of rows gone", self.definition.alias, table)
            sweep(self.definition, self.client, self.config)
            return []
        logger.warning("%s: %s was truncated: sending every document again", self.definition.alias, table)
        return [str(pk) for pk in self.definition.get_queryset().values_list("pk", flat=True).order_by()]

    def confirm(self, lsn: str) -> None:
        self.on_slot("SELECT pg_replication_slot_advance(%s, %s::pg_lsn)", [self.slot, lsn])
        self.result.confirmed_lsn = lsn

    def drain_queue(self) -> None:
        """Drain what the stream (or anyone) queued for the alias and is due: retries, replays after a swap."""
        if self.result.queue is None:
            self.result.queue = DrainResult(alias=self.definition.alias, definition=self.definition.path)
        if queue_migrated():
            drain_alias(self.definition, self.client, self.config, self.result.queue, until=self.queue_until)


def follow(
    definitions: list[IndexDefinition],
    client: Any,
    config: Config,
    *,
    once: bool = False,
    max_seconds: float | None = None,
) -> list[StreamResult]:
    """Follow the slots of ``definitions``: until nothing new is in them (``once``), ``max_seconds`` or a signal.

    The slots are in the queue's database, set up (``reindex.stream.slots.check_ready``).
    An outage of the database or of the search server ends a ``once`` run with the
    alias's error (nothing is confirmed past what was sent); otherwise it is logged
    once and waited out. StreamBusy when another consumer follows one of the slots.
    """
    using = changequeue.queue_database()
    queue_migrated()  # ConfigurationError before `migrate reindex`: failures and replays wait in the queue
    followers = [Follower(definition, client, config, using) for definition in definitions]
    started = time.monotonic()
    try:
        for follower in followers if once else ():
            follower.until, follower.queue_until = follower.log_end(), changequeue.clock()
        while True:
            busy = False
            for follower in followers:
                if not (once and (follower.caught_up or follower.result.exception is not None)):
                    busy = _one_round(follower, once) or busy
            if once and all(f.caught_up or f.result.exception is not None for f in followers):
                break
            if max_seconds is not None and time.monotonic() - started >= max_seconds:
                break
            if not busy:
                interrupts.sleep(config.stream_poll_interval)
    except Interrupted:
        pass  # the round under way was finished and confirmed
    finally:
        for follower in followers:
            follower.result.seconds = time.monotonic() - started
    return [follower.result for follower in followers]


def _one_round(follower: Follower, once: bool) -> bool:
    """A round of one alias and a drain of its queue; an outage noted (and, with ``once``, the alias's end)."""
    result = follower.result
    try:
        busy = follower.round()
        # The round was read, sent and confirmed: the outage is over, even if a signal ends the drain that follows.
        if result.error is not None and not once:
            logger.warning("%s: streaming again", follower.definition.alias)
        result.error = result.exception = None
        follower.drain_queue()
    except (StreamBusy, Interrupted):
        raise
    except ReindexError as exc:
        # An outage once: the database's says "terminating connection", then "connection refused" until it is back.
        database_still = isinstance(exc, DatabaseUnavailable) and isinstance(result.exception, DatabaseUnavailable)
        ongoing = database_still or str(exc) == result.error
        if not once and not ongoing:
            logger.warning("%s; following again once it answers", exc)
        result.error, result.exception = str(exc), exc
        if not once:
            interrupts.sleep(follower.config.retry_backoff)
        return False
    return busy
