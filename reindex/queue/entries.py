"""The change queue: which rows' documents are out of date, kept in the site's own database.

One row per (alias, primary key) in ``reindex_queue`` (``reindex.models.QueueEntry``).
Saving a row queues it with one upsert in the save's own transaction, so a rolled-back
save queues nothing and a committed one is never lost; a hundred saves of one row
while no drainer runs are one entry. A drainer then::

    entries = claim("products", 500, lease=60)  # a batch, held for 60 seconds
    ...  # build and send their documents
    acknowledge(done, token)  # removed only once the server confirmed them
    fail(failed, token, config)  # retried later with back-off, dead after QUEUE_MAX_ATTEMPTS

Why it never loses a change, nor blocks on a bad one:

- *Claims* set ``claimed_by`` and a lease with a conditional update that only takes
  entries still claimable, so two drainers can never both hold one. On PostgreSQL and
  MariaDB the candidates are read ``FOR UPDATE SKIP LOCKED`` first, so concurrent
  drainers take different entries instead of waiting on each other. A drainer killed
  with ``kill -9`` holds its entries only until their lease expires.
- *Late acknowledgement*: an entry is deleted only after its document was written, and
  only if it was not queued again meanwhile (``requeued``, set by the upsert when it
  meets a claimed entry): such an entry goes back to pending, since the drainer may
  have read the row before that last change. A drainer whose lease expired and was
  taken over may have written an older document: its acknowledgement queues the
  entry again instead of deleting it.
- *Poison*: a failing entry waits ``QUEUE_BACKOFF * 2**(attempts-1)`` seconds (at
  most ``QUEUE_BACKOFF_MAX``) before the next try and is ``dead`` after
  ``QUEUE_MAX_ATTEMPTS``, with its last error; the others go on. A new change to a
  dead entry's row makes it pending again (the change may be the fix), as does
  ``retry()``.

Times are this host's clock (``django.utils.timezone.now()``); a lease is long enough
for the clocks of the drainers' hosts to disagree by a few seconds.
"""

from __future__ import annotations

import datetime
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from reindex.config import Config
from reindex.database.lookups import keys_sql
from reindex.errors import ConfigurationError, DatabaseUnavailable, first_line
from reindex.results import JsonResult, json_as
from reindex.server.retries import backoff

T = TypeVar("T")

#: Rows per INSERT statement when many keys are queued at once (``reindex.enqueue``).
INSERT_CHUNK = 500
#: The columns an upsert writes (``reindex.queue.triggers`` writes the same).
QUEUE_COLUMNS = ("alias", "object_id", "state", "attempts", "available_at", "changed_at", "requeued", "last_error")

# What an upsert does to an entry already there. Pending: nothing (one entry however many
# saves). Claimed: ``requeued`` (and the time of the change, for the lag), so that the
# drainer's acknowledgement puts it back. Dead: pending again, attempts forgotten. Any: no
# longer ``held_for`` a building index (the change must reach it too).
# MariaDB assigns left to right and later expressions see the new values: ``state`` is last.
_ON_CONFLICT = (
    "held_for = NULL, "
    "changed_at = CASE WHEN {t}.state = 'dead' OR ({t}.state = 'claimed' AND NOT {t}.requeued) "
    "THEN {new_changed_at} ELSE {t}.changed_at END, "
    "attempts = CASE WHEN {t}.state = 'dead' THEN 0 ELSE {t}.attempts END, "
    "available_at = CASE WHEN {t}.state = 'dead' THEN {new_available_at} ELSE {t}.available_at END, "
    "requeued = ({t}.requeued OR {t}.state = 'claimed'), "
    "state = CASE WHEN {t}.state = 'dead' THEN 'pending' ELSE {t}.state END"
)


def queue_database() -> str:
    """The database alias the queue lives in: where the router writes ``QueueEntry`` (usually ``default``).

    Capture writes an entry in the save's transaction when the row is in this database too.
    """
    from django.db import router

    from reindex.models import QueueEntry

    return router.db_for_write(QueueEntry) or "default"


def check_migrated(using: str | None = None) -> None:
    """Raise ConfigurationError when the queue's table is missing or lacks a column: ``migrate reindex`` not run.

    The one check every queue command (and ``triggers install``) makes before touching
    the table, so that each says the same one line instead of the database's traceback.
    """
    from django.db import connections

    from reindex.models import QueueEntry

    connection = connections[using or queue_database()]
    table = QueueEntry._meta.db_table
    with connection.cursor() as cursor:
        if table not in connection.introspection.table_names(cursor):
            problem = "is missing"
        else:
            found = {column.name for column in connection.introspection.get_table_description(cursor, table)}
            missing = [field.column for field in QueueEntry._meta.concrete_fields if field.column not in found]
            problem = f"lacks {', '.join(missing)}" if missing else ""
    if problem:
        raise ConfigurationError(f"the queue's table {table} {problem}: run python manage.py migrate reindex first")


def clock() -> datetime.datetime:
    """The queue's clock: this host's (``django.utils.timezone.now()``)."""
    from django.utils import timezone

    return timezone.now()


def enqueue_keys(entries: Iterable[tuple[str, Any]], using: str | None = None) -> int:
    """Queue ``(alias, primary key)`` pairs with one upsert per ``INSERT_CHUNK``; return how many distinct pairs.

    Runs in the caller's transaction (if any): a rollback takes the entries with it.
    """
    from django.db import connections

    # Sorted: concurrent upserts of overlapping keys then lock their rows in one order, never in a cycle.
    # Integer keys in their numeric order: a bulk of rows queued at once is claimed in primary-key
    # order, so that a batch's keys are a range (read as one, ``reindex.definitions.related``).
    pairs = sorted(set((alias, str(pk)) for alias, pk in entries), key=_key_order)
    if not pairs:
        return 0
    connection = connections[using or queue_database()]
    now = connection.ops.adapt_datetimefield_value(clock())
    table = connection.ops.quote_name("reindex_queue")
    for start in range(0, len(pairs), INSERT_CHUNK):
        chunk = pairs[start : start + INSERT_CHUNK]
        values = ", ".join(["(" + ", ".join(["%s"] * len(QUEUE_COLUMNS)) + ")"] * len(chunk))
        params: list[Any] = []
        for alias, key in chunk:
            params += [alias, key, "pending", 0, now, now, False, ""]
        sql = f"INSERT INTO {table} ({', '.join(QUEUE_COLUMNS)}) VALUES {values} {conflict_clause(connection.vendor)}"
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
    return len(pairs)


def _key_order(pair: tuple[str, str]) -> tuple[str, int, int, str]:
    """The order of ``(alias, key)`` pairs: by alias, then integer keys by value, before other keys by text.

    Decided by the key's text alone, so that every upsert orders the same keys the same way.
    """
    alias, key = pair
    try:
        number = int(key)
    except ValueError:
        return alias, 1, 0, key
    if str(number) != key:  # "007", " 7": not an integer's own text
        return alias, 1, 0, key
    return alias, 0, number, ""


def conflict_clause(vendor: str) -> str:
    """The upsert's ``ON CONFLICT`` (``ON DUPLICATE KEY`` on MariaDB) part: what a change does to an entry there."""
    if vendor == "mysql":
        update = _ON_CONFLICT.format(
            t="reindex_queue", new_changed_at="VALUES(changed_at)", new_available_at="VALUES(available_at)"
        )
        return f"ON DUPLICATE KEY UPDATE {update}"
    update = _ON_CONFLICT.format(
        t="reindex_queue", new_changed_at="excluded.changed_at", new_available_at="excluded.available_at"
    )
    return f"ON CONFLICT (alias, object_id) DO UPDATE SET {update}"


@contextmanager
def database_errors(alias: str) -> Iterator[None]:
    """Turn a lost or refused database connection into DatabaseUnavailable, closing the broken connections.

    Django reconnects at the next query once a broken connection is closed: a drainer
    running as a worker outlives a database restart.
    """
    from django.db import InterfaceError, OperationalError, close_old_connections

    try:
        yield
    except (OperationalError, InterfaceError) as exc:
        close_old_connections()  # closes the connections that are no longer usable
        raise DatabaseUnavailable(f"{alias}: the database: {first_line(exc)}") from exc


class Entry(NamedTuple):
    """A claimed entry: what a drainer needs of it (a row of ``reindex_queue``, not a model instance).

    A named tuple: a claim makes a thousand at a time, straight from the rows (``_make``).
    """

    id: int
    alias: str
    object_id: str
    attempts: int
    held_for: str | None = None


#: The columns of an Entry, in its fields' order.
ENTRY_COLUMNS = ("id", "alias", "object_id", "attempts", "held_for")


@dataclass(frozen=True)
class Claimed:
    """A batch of entries one drainer holds until ``lease_expires``, under ``token``."""

    token: str
    entries: list[Any]


def claim(
    alias: str,
    limit: int,
    lease: float,
    using: str | None = None,
    *,
    changed_before: datetime.datetime | None = None,
) -> Claimed:
    """Take up to ``limit`` claimable entries of ``alias``: pending and due, or claimed with an expired lease.

    An expired lease counts as a failed attempt (its drainer died, perhaps because of
    this very row), so a row that kills every drainer also ends up dead. One statement
    where the database can return the rows it updates (PostgreSQL, SQLite 3.35+), three
    on MariaDB; the entries come back in ``id`` order. ``changed_before``: only entries
    queued before that time (a one-off drain's start: what a busy site queues meanwhile
    is left for the next one, so the drain ends).
    """
    from django.db import connections

    using = using or queue_database()
    token = uuid.uuid4().hex
    if _returns_updated_rows(connections[using]):
        taken = deadlock_retried(lambda: _claim_returning(alias, limit, lease, token, using, changed_before))
    else:
        taken = deadlock_retried(lambda: _claim_in_steps(alias, limit, lease, token, using, changed_before))
    return Claimed(token, sorted(taken, key=lambda entry: entry.id))


def claimable(alias: str, changed_before: datetime.datetime | None = None, using: str | None = None) -> bool:
    """Whether ``alias`` has entries a claim could take (queued before ``changed_before``), read without a lock.

    A claim that came back empty on MariaDB may only have skipped the rows another
    drainer's claim was locking that very moment (InnoDB locks every row its sorted
    read passed): these entries are still there for the next try.
    """
    from reindex.models import QueueEntry

    entries = QueueEntry.objects.using(using or queue_database()).filter(_claimable_now(clock()), alias=alias)
    if changed_before is not None:
        entries = entries.filter(changed_at__lte=changed_before)
    return entries.exists()


def _claimable_now(now: datetime.datetime) -> Any:
    """Pending and due, or claimed with an expired lease (due when it was claimed: read through the same range)."""
    from django.db.models import Q

    from reindex.models import CLAIMED, PENDING

    return Q(available_at__lte=now) & (Q(state=PENDING) | Q(state=CLAIMED, lease_expires__lt=now))


def never() -> datetime.datetime:
    """When a dead entry is due: the year 9000, out of every claim's range (a change or ``retry`` makes it pending).

    The claim's index does not hold ``state`` (``reindex.models.QueueEntry``), so a dead
    entry due in the past would be read, and passed over, by every claim.
    """
    return clock().replace(year=9000, month=1, day=1, hour=0, minute=0, second=0, microsecond=0)


def _returns_updated_rows(connection: Any) -> bool:
    """True when ``UPDATE ... RETURNING`` works: PostgreSQL, SQLite 3.35+ (not MariaDB)."""
    return connection.vendor in ("postgresql", "sqlite") and bool(connection.features.can_return_columns_from_insert)


#: What a claim writes: an expired lease counts as an attempt. ``state`` last (MariaDB order).
_CLAIM_SET = (
    "attempts = CASE WHEN state = %s THEN attempts + 1 ELSE attempts END, "
    "last_error = CASE WHEN state = %s THEN %s ELSE last_error END, "
    "claimed_by = %s, lease_expires = %s, state = %s"
)
_LEASE_EXPIRED = "the lease expired (drainer gone?)"


def _claim_returning(
    alias: str, limit: int, lease: float, token: str, using: str, changed_before: datetime.datetime | None
) -> list[Entry]:
    """The claim as one ``UPDATE ... WHERE id IN (<candidates> [FOR UPDATE SKIP LOCKED] LIMIT n) RETURNING``."""
    from django.db import connections

    from reindex.models import CLAIMED, PENDING

    connection = connections[using]
    ops = connection.ops
    now = clock()
    at = ops.adapt_datetimefield_value(now)
    expires = ops.adapt_datetimefield_value(now + datetime.timedelta(seconds=lease))
    table = ops.quote_name("reindex_queue")
    claimable = "((state = %s AND available_at <= %s) OR (state = %s AND lease_expires < %s))"
    lock = " FOR UPDATE SKIP LOCKED" if connection.features.has_select_for_update_skip_locked else ""
    before, bound = "", []
    if changed_before is not None:
        before, bound = " AND changed_at <= %s", [ops.adapt_datetimefield_value(changed_before)]
    # The candidates in a materialised CTE: as an ``IN (SELECT ... LIMIT)`` PostgreSQL may
    # run the subquery again for each row it updates, taking far more than ``limit``. They
    # are read in the order of the index (alias, available_at, id), due ones only, and the
    # read stops at ``limit``: a pending entry is due from ``available_at``, a claimed one
    # was due when it was claimed (its lease decides), a dead one is due ``never()``.
    sql = (
        f"WITH picked AS MATERIALIZED (SELECT id FROM {table} WHERE alias = %s AND available_at <= %s{before}"
        f" AND {claimable} ORDER BY available_at, id LIMIT %s{lock})"
        f" UPDATE {table} SET {_CLAIM_SET} WHERE {_ids_of(connection, 'picked')} AND {claimable}"
        f" RETURNING {', '.join(ENTRY_COLUMNS)}"
    )
    condition = [PENDING, at, CLAIMED, at]
    picks = [alias, at, *bound, *condition, limit]
    params = [*picks, CLAIMED, CLAIMED, _LEASE_EXPIRED, token, expires, CLAIMED, *condition]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(map(Entry._make, cursor.fetchall()))


def _ids_of(connection: Any, cte: str) -> str:
    """The condition "``id`` is one of the ids of ``cte``": an array on PostgreSQL, which then looks each
    up by primary key (with ``IN (SELECT ...)`` it scanned the whole table, guessing the CTE small)."""
    if connection.vendor == "postgresql":
        return f"id = ANY(ARRAY(SELECT id FROM {cte}))"
    return f"id IN (SELECT id FROM {cte})"


def _claim_in_steps(
    alias: str, limit: int, lease: float, token: str, using: str, changed_before: datetime.datetime | None
) -> list[Entry]:
    """The claim as a locking read of the candidates, an update of those, and a read of what was taken."""
    from django.db import connections, transaction
    from django.db.models import Case, F, IntegerField, Q, TextField, Value, When

    from reindex.models import CLAIMED, QueueEntry

    now = clock()
    claimable = _claimable_now(now)
    entries = QueueEntry.objects.using(using)
    with transaction.atomic(using=using):
        candidates = entries.filter(claimable, alias=alias).order_by("available_at", "id")
        if changed_before is not None:
            candidates = candidates.filter(changed_at__lte=changed_before)
        if connections[using].features.has_select_for_update_skip_locked:
            candidates = candidates.select_for_update(skip_locked=True)
        ids = list(candidates.values_list("id", flat=True)[:limit])
        if not ids:
            return []
        expired = Q(state=CLAIMED)
        # ``state`` last: MariaDB evaluates each assignment after the previous ones.
        entries.filter(claimable, id__in=ids).update(
            attempts=Case(When(expired, then=F("attempts") + 1), default=F("attempts"), output_field=IntegerField()),
            last_error=Case(
                When(expired, then=Value(_LEASE_EXPIRED)), default=F("last_error"), output_field=TextField()
            ),
            claimed_by=token,
            lease_expires=now + datetime.timedelta(seconds=lease),
            state=CLAIMED,
        )
    return list(map(Entry._make, entries.filter(claimed_by=token).values_list(*ENTRY_COLUMNS)))


def acknowledge(entries: Sequence[Any], token: str, using: str | None = None) -> list[Any]:
    """Remove the entries whose documents the server confirmed; return those whose claim was lost.

    An entry queued again while claimed goes back to pending. An entry this drainer no
    longer holds (its lease expired and another drainer took it, or finished it) is
    queued again: what this drainer wrote may be older than what the other one did.
    """
    from django.db import transaction

    using = using or queue_database()
    if not entries:
        return []
    left = _delete_unchanged(entries, token, using)
    if left is not None:  # the common case took one statement: only entries changed or locked meanwhile are left
        entries = left
        if not entries:
            return []

    def settle_unlocked() -> set[int]:
        with transaction.atomic(using=using):
            settled = _lock_held(entries, token, using)
            _settle(sorted(settled), token, using)
            return settled

    settled = deadlock_retried(settle_unlocked)
    lost = []
    for entry in entries:
        if entry.id in settled:
            continue
        # Locked this very moment: by a site's transaction queueing it again, or by another
        # drainer's statement reading past it. One row a transaction (nothing else held while
        # waiting for it): removed, or back to pending if changed, or queued again if taken over.
        with transaction.atomic(using=using):
            if not _settle(sorted(_lock_held([entry], token, using, wait=True)), token, using):
                lost.append(entry)
    for entry in lost:  # one row a statement: a drainer never holds one row while waiting for another
        enqueue_keys([(entry.alias, entry.object_id)], using)
    return lost


def _delete_unchanged(entries: Sequence[Any], token: str, using: str) -> list[Any] | None:
    """Delete the entries still held under ``token`` and not queued again, in one statement; return the others.

    Rows a site's transaction has locked (queueing them again) are skipped, as
    ``_lock_held`` skips them. Found by primary key: on PostgreSQL a row lock is the
    row's, whichever index led to it (MariaDB, which locks index entries, reads them
    through the unique index: ``_settle``); 20 to 30% cheaper than a thousand
    (alias, object_id) lookups. None where the database cannot return the rows it
    deletes (MariaDB).
    """
    from django.db import connections

    connection = connections[using]
    if not _returns_updated_rows(connection):
        return None
    table = connection.ops.quote_name("reindex_queue")
    among, params = keys_sql(connection, "id", sorted(entry.id for entry in entries))
    unchanged = f"{among} AND claimed_by = %s AND requeued = %s"
    if connection.features.has_select_for_update_skip_locked:  # read apart, skipping the locked rows
        sql = (
            f"WITH held AS MATERIALIZED (SELECT id FROM {table} WHERE {unchanged} FOR UPDATE SKIP LOCKED)"
            f" DELETE FROM {table} WHERE {_ids_of(connection, 'held')} RETURNING id"
        )
    else:  # SQLite: a writer holds the whole database, no row is locked by another
        sql = f"DELETE FROM {table} WHERE {unchanged} RETURNING id"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, token, False])
        deleted = {int(row[0]) for row in cursor.fetchall()}
    return [entry for entry in entries if entry.id not in deleted]


def _keys_by_alias(entries: Sequence[Any]) -> dict[str, list[str]]:
    """The entries' keys (sorted) by alias."""
    by_alias: dict[str, list[str]] = {}
    for entry in entries:
        by_alias.setdefault(entry.alias, []).append(entry.object_id)
    return {alias: sorted(keys) for alias, keys in by_alias.items()}


def _settle(ids: Sequence[int], token: str, using: str) -> int:
    """Inside a transaction: delete the entries of ``ids`` held under ``token``, or put back those queued again.

    Returns how many were settled. On MariaDB each is deleted by its own statement: InnoDB
    may read a whole range (or the table) for an ``IN`` list and lock every row it reads,
    waiting for the rows another drainer holds while holding its own, which deadlocked two
    drainers' acknowledgements; a delete by primary key reads, and locks, that row only.
    """
    from django.db import connections

    from reindex.models import PENDING, QueueEntry

    connection = connections[using]
    table = connection.ops.quote_name(QueueEntry._meta.db_table)
    chunks = [[pk] for pk in ids] if connection.vendor == "mysql" else [list(ids)] if ids else []
    deleted = 0
    with connection.cursor() as cursor:
        for chunk in chunks:
            marks = ", ".join(["%s"] * len(chunk))
            cursor.execute(
                f"DELETE FROM {table} WHERE id IN ({marks}) AND claimed_by = %s AND requeued = %s",
                [*chunk, token, False],
            )
            deleted += cursor.rowcount
    rows = QueueEntry.objects.using(using).filter(id__in=ids, claimed_by=token)
    return deleted + int(rows.update(**_released(PENDING, clock(), attempts=0)))


def deadlock_retried(step: Callable[[], T], tries: int = 5) -> T:
    """Run ``step`` (one transaction) again when the database made it a deadlock's victim, up to ``tries`` times.

    The drainer's transactions never wait for a row while holding another; this covers what
    the database may still detect as a cycle (its own index locks), so a batch is not left
    claimed until its lease expires for it.
    """
    from django.db import OperationalError

    for attempt in range(tries):
        try:
            return step()
        except OperationalError as exc:
            if attempt == tries - 1 or not is_deadlock(exc):
                raise
            time.sleep(0.01 * 2**attempt)
    raise AssertionError("unreachable")


def is_deadlock(exc: BaseException) -> bool:
    """True for the error of a transaction rolled back to break a deadlock (MariaDB 1213, PostgreSQL 40P01)."""
    cause = exc.__cause__
    return bool(exc.args and exc.args[0] == 1213) or getattr(cause, "sqlstate", None) == "40P01"


def is_locked(exc: BaseException) -> bool:
    """True for SQLite's "database is locked": another connection held the write lock past the busy timeout."""
    return "database is locked" in str(exc)


def give_back(entries: Sequence[Any], token: str, patience: float, reason: str = "", using: str | None = None) -> bool:
    """Put a claimed batch its drainer cannot finish back to pending, due at once, no attempt counted; True if done.

    Not the entries' fault (the database let the drainer down), so no attempt is
    counted. Tried again while the database is locked, for up to ``patience`` seconds:
    the entries are pending again as soon as the site's transaction that holds the lock
    ends, not when the lease expires. Entries already settled are left as they are.
    """
    from django.db import InterfaceError, OperationalError

    deadline, pause = time.monotonic() + patience, 0.1
    while True:
        try:
            release(entries, token, 0.0, reason, using)
            return True
        except (OperationalError, InterfaceError) as exc:
            if not is_locked(exc) or time.monotonic() + pause > deadline:
                return False
        time.sleep(pause)
        pause = min(2 * pause, 1.0)


def give_back_after(error: BaseException, entries: Sequence[Any], token: str, lease: float) -> bool:
    """``give_back`` a batch the database let down with ``error``: patient for ``lease`` seconds while it is locked."""
    patience = lease if is_locked(error) else 0.0
    return give_back(entries, token, patience, f"the database: {first_line(error)}")


def _lock_held(entries: Sequence[Any], token: str, using: str, *, wait: bool = False) -> set[int]:
    """Inside a transaction: lock those of ``entries`` still held under ``token``; their ids.

    Rows a site's transaction is queueing again right now are skipped, never waited for
    (unless ``wait``, for one row): waiting on several rows that the site locks in another
    order could deadlock, and the site's save might be the one to fail. The caller settles
    those one row at a time, holding nothing else while it waits. The rows are read
    through the unique (alias, object_id) index, as a site's upsert finds them: on MariaDB
    an upsert locks that index's entry before the row, and a drainer that locked the row
    first and then wanted the entry (to delete it) met the upsert in a deadlock.
    """
    from django.db import connections

    from reindex.models import QueueEntry

    if not entries:
        return set()
    connection = connections[using]
    meta = QueueEntry._meta
    table = connection.ops.quote_name(meta.db_table)
    hint = " FORCE INDEX (reindex_queue_alias_object)" if connection.vendor == "mysql" else ""
    lock = ""
    if connection.features.has_select_for_update:
        lock = " " + connection.ops.for_update_sql(
            skip_locked=not wait and connection.features.has_select_for_update_skip_locked
        )
    held: set[int] = set()
    with connection.cursor() as cursor:
        for alias, keys in _keys_by_alias(entries).items():
            among, params = keys_sql(connection, "object_id", keys)
            cursor.execute(
                f"SELECT id FROM {table}{hint} WHERE alias = %s AND {among} AND claimed_by = %s{lock}",
                [alias, *params, token],
            )
            held.update(int(row[0]) for row in cursor.fetchall())
    return held


def _released(state: str, available_at: datetime.datetime, **more: Any) -> dict[str, Any]:
    return {
        "state": state,
        "claimed_by": None,
        "lease_expires": None,
        "requeued": False,
        "held_for": None,
        "available_at": available_at,
        **more,
    }


def fail(failures: Sequence[tuple[Any, str]], token: str, config: Config, using: str | None = None) -> int:
    """Put back ``(entry, reason)`` pairs with back-off, or mark them dead after ``QUEUE_MAX_ATTEMPTS``.

    Returns how many became dead.
    """
    from reindex.models import DEAD, QueueEntry

    using = using or queue_database()
    dead = 0
    for entry, reason in failures:
        state, due, attempts = _next_try(entry.attempts, config)
        dead += state == DEAD
        QueueEntry.objects.using(using).filter(id=entry.id, claimed_by=token).update(
            **_released(state, due, attempts=attempts, last_error=reason[:2000])
        )
    return dead


def _next_try(attempts: int, config: Config) -> tuple[str, datetime.datetime, int]:
    """After one more failed attempt: the entry's state, when it is due, and its attempts."""
    from reindex.models import DEAD, PENDING

    attempts += 1
    if attempts >= config.queue_max_attempts:
        return DEAD, never(), attempts
    return (
        PENDING,
        clock() + datetime.timedelta(seconds=backoff(attempts, config.queue_backoff, config.queue_backoff_max)),
        attempts,
    )


def release(
    entries: Sequence[Any],
    token: str,
    delay: float,
    reason: str = "",
    using: str | None = None,
    *,
    held_for: str | None = None,
) -> None:
    """Put entries back as they were, due in ``delay`` seconds, without counting an attempt.

    For what is not the entries' fault (the server is down, a rebuild is loading).
    ``held_for``: the building indexes the entries' documents were just written to;
    an entry not changed while claimed keeps it, so that the next drain does not send
    it there again (a change clears it).
    """
    from django.db import transaction

    from reindex.models import PENDING, QueueEntry

    using = using or queue_database()
    values = _released(PENDING, clock() + datetime.timedelta(seconds=delay), last_error=reason[:2000])
    rows = QueueEntry.objects.using(using)

    def put_back(selected: Any) -> None:
        if held_for is not None:
            selected.filter(claimed_by=token, requeued=False).update(**{**values, "held_for": held_for[:255]})
        selected.filter(claimed_by=token).update(**values)

    def put_back_unlocked() -> set[int]:
        with transaction.atomic(using=using):
            locked = _lock_held(entries, token, using)
            put_back(rows.filter(id__in=locked))
            return locked

    locked = deadlock_retried(put_back_unlocked)
    for entry in entries:
        if entry.id not in locked:  # being queued again by the site: one row at a time
            with transaction.atomic(using=using):
                put_back(rows.filter(id__in=_lock_held([entry], token, using, wait=True)))


def hand_over(alias: str, keys: Sequence[str], delay: float, reason: str = "", held_for: str | None = None) -> None:
    """Queue ``keys`` of ``alias`` for a drain ``delay`` seconds from now, without counting an attempt.

    What the event stream could not finish itself: documents the server could not take
    this moment, or sent while a rebuild loads (``held_for``: the building indexes they
    reached, as ``release`` keeps it; sent to the new index once it is live). An entry
    a drainer holds right now is only marked ``requeued`` (its acknowledgement puts it back).
    """
    from reindex.models import PENDING, QueueEntry

    using = queue_database()
    enqueue_keys([(alias, key) for key in keys], using)
    due = clock() + datetime.timedelta(seconds=delay)
    rows = QueueEntry.objects.using(using).filter(alias=alias, state=PENDING)
    for start in range(0, len(keys), INSERT_CHUNK):
        chunk = rows.filter(object_id__in=list(keys[start : start + INSERT_CHUNK]))
        chunk.update(available_at=due, last_error=reason[:2000], held_for=held_for and held_for[:255])


def isolate(alias: str, failures: Sequence[tuple[str, str]], config: Config) -> int:
    """Queue the ``(key, reason)`` documents that failed outside the queue, an attempt counted; how many are dead.

    They wait ``QUEUE_BACKOFF * 2**(attempts-1)`` seconds and are dead after
    ``QUEUE_MAX_ATTEMPTS``, as the queue's own failures are (``fail``).
    """
    from reindex.models import DEAD, PENDING, QueueEntry

    using = queue_database()
    enqueue_keys([(alias, key) for key, _ in failures], using)
    rows = QueueEntry.objects.using(using).filter(alias=alias, state=PENDING)
    dead = 0
    for key, reason in failures:
        found = rows.filter(object_id=key).values_list("attempts", flat=True).first()
        if found is None:  # a drainer holds it: it is sent again anyway
            continue
        state, due, attempts = _next_try(found, config)
        dead += state == DEAD
        rows.filter(object_id=key).update(state=state, attempts=attempts, available_at=due, last_error=reason[:2000])
    return dead


@dataclass
class QueueStatus(JsonResult):
    """The queue of one alias: entries waiting, being drained, dead, and the age of the oldest change."""

    alias: str
    pending: int = 0
    claimed: int = 0
    dead: int = 0
    #: Seconds since the oldest change not yet drained was queued (None when none waits).
    lag: float | None = field(default=None, metadata=json_as(rounded=3))

    @property
    def depth(self) -> int:
        """Entries waiting to be drained: pending and claimed (the dead wait for ``retry``)."""
        return self.pending + self.claimed


def queue_status(alias: str, using: str | None = None) -> QueueStatus:
    """Counts by state and the lag of ``alias``'s queue (one query)."""
    from django.db.models import Count, Min

    from reindex.models import DEAD, QueueEntry

    status = QueueStatus(alias)
    oldest = None
    by_state = QueueEntry.objects.using(using or queue_database()).filter(alias=alias).values("state")
    for row in by_state.annotate(n=Count("id"), oldest=Min("changed_at")).order_by():
        setattr(status, row["state"], row["n"])
        if row["state"] != DEAD and (oldest is None or row["oldest"] < oldest):
            oldest = row["oldest"]
    if oldest is not None:
        status.lag = max(0.0, (clock() - oldest).total_seconds())
    return status


def retry_dead(alias: str, object_ids: Iterable[Any] | None = None, using: str | None = None) -> int:
    """Make the dead entries of ``alias`` (only those of ``object_ids`` when given) pending again; how many."""
    from reindex.models import DEAD, PENDING, QueueEntry

    dead = _of_rows(QueueEntry.objects.using(using or queue_database()).filter(alias=alias, state=DEAD), object_ids)
    return int(dead.update(**_released(PENDING, clock(), attempts=0)))


def purge(alias: str, dead_only: bool, object_ids: Iterable[Any] | None = None, using: str | None = None) -> int:
    """Delete the entries of ``alias`` (only the dead ones with ``dead_only``, those of ``object_ids``); how many."""
    from reindex.models import DEAD, QueueEntry

    entries = _of_rows(QueueEntry.objects.using(using or queue_database()).filter(alias=alias), object_ids)
    if dead_only:
        entries = entries.filter(state=DEAD)
    deleted, _ = entries.delete()
    return int(deleted)


def _of_rows(entries: Any, object_ids: Iterable[Any] | None) -> Any:
    """``entries`` narrowed to the rows of ``object_ids`` (primary keys), unless None."""
    return entries if object_ids is None else entries.filter(object_id__in=[str(pk) for pk in object_ids])


def queued_by_hour(alias: str, hours: int, using: str | None = None) -> list[int]:
    """The entries of ``alias`` waiting now (dead ones aside), by the hour their change was queued: the last
    ``hours`` hours, oldest first (older changes count in the first hour). One query."""
    from django.db.models import Count
    from django.db.models.functions import TruncHour
    from django.utils import timezone

    from reindex.models import DEAD, QueueEntry

    now = clock()
    local = timezone.localtime(now) if timezone.is_aware(now) else now  # the hours TruncHour cuts at
    start = local.replace(minute=0, second=0, microsecond=0) - datetime.timedelta(hours=hours - 1)
    counts = [0] * hours
    waiting = QueueEntry.objects.using(using or queue_database()).filter(alias=alias).exclude(state=DEAD)
    by_hour = waiting.annotate(hour=TruncHour("changed_at")).values("hour").annotate(n=Count("id")).order_by()
    for row in by_hour:
        slot = int((row["hour"] - start).total_seconds() // 3600)
        counts[min(max(slot, 0), hours - 1)] += row["n"]
    return counts
