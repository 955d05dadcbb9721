"""The replication slot and publication of an alias: set up, read, dropped.

One slot per alias (``reindex_<alias>``, plugin ``pgoutput``, shipped with PostgreSQL)
and one publication of the same name over the tables its documents are made from: the
definition's own table and every table a ``watch`` lookup goes through, as the
triggers compile them (``reindex.queue.triggers.planned``). A slot per alias, as the
queue keeps entries per alias: one alias's outage or poison row never holds back
another's log, and each one's lag and retained WAL can be read and alarmed on alone.

Tables whose changes lead to documents through a column other than their primary key
(a many-to-many link table: its product column) get ``REPLICA IDENTITY FULL``, so that
a DELETE carries that column; ``drop`` puts back ``DEFAULT`` where setup changed it and
no other alias's publication still needs it. What setup changed is written in the
publication's comment: ``drop`` removes only what it created.

    statuses = setup(definitions, "default")
    [status] = slot_status(definitions, "default", config)
    status.retained_bytes, status.lag_bytes, status.lag_seconds, status.problems
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from reindex.config import Config
from reindex.errors import ConfigurationError
from reindex.queue.triggers import KeySource
from reindex.results import JsonResult, json_as
from reindex.stream.routes import Routes

PLUGIN = "pgoutput"
_COMMENT = "reindex stream "


def slot_name(alias: str) -> str:
    """``reindex_<alias>``: slot and publication names allow lower-case letters, digits and ``_``, 63 at most."""
    return ("reindex_" + re.sub(r"[^a-z0-9_]", "_", alias.lower()))[:63]


@dataclass
class SlotStatus(JsonResult):
    """An alias's slot: whether it exists, how far its consumer is behind, how much WAL it makes PostgreSQL keep."""

    alias: str
    slot: str
    exists: bool = False
    #: A consumer is reading it right now.
    active: bool = False
    tables: list[str] = field(default_factory=list)
    #: Bytes of WAL written since the position the consumer confirmed.
    lag_bytes: int | None = None
    #: Seconds since the oldest change the consumer has not confirmed was committed (0 when none waits).
    lag_seconds: float | None = field(default=None, metadata=json_as(rounded=3))
    #: Bytes of WAL PostgreSQL keeps for this slot (they cannot be removed until it moves on).
    retained_bytes: int | None = None
    confirmed_lsn: str | None = None
    #: Tables setup gave REPLICA IDENTITY FULL.
    identity_full: list[str] = field(default_factory=list)
    #: What is wrong, one line each (missing, lagging, retaining too much WAL), without the alias.
    problems: list[str] = field(default_factory=list)

    @property
    def healthy(self) -> bool:
        return not self.problems


def tables_of(definition: Any, using: str) -> tuple[list[str], list[str]]:
    """The tables an alias's documents come from, and those of them that need REPLICA IDENTITY FULL."""
    routes = Routes.of(definition, using)
    full = sorted(table for table, sources in routes.by_table.items() if any(_needs_full(s, using) for s in sources))
    return routes.tables, full


def _needs_full(source: KeySource, using: str) -> bool:
    """True when a change of ``source.table`` leads to keys through a column that is not its primary key."""
    return source.column not in primary_key_columns(source.table, using)


def primary_key_columns(table: str, using: str) -> set[str]:
    from django.db import connections

    with connections[using].cursor() as cursor:
        constraints = connections[using].introspection.get_constraints(cursor, table)
    return {column for found in constraints.values() if found.get("primary_key") for column in found["columns"]}


def check_database(using: str) -> None:
    """Raise ConfigurationError unless ``using`` is PostgreSQL with ``wal_level = logical`` and may replicate."""
    from django.db import connections

    connection = connections[using]
    if connection.vendor != "postgresql":
        raise ConfigurationError(f"the stream needs PostgreSQL; the database {using!r} is {connection.vendor}")
    with connection.cursor() as cursor:
        cursor.execute("SHOW wal_level")
        (level,) = cursor.fetchone()
        if level != "logical":
            raise ConfigurationError(
                f"the database {using!r} has wal_level = {level}: set wal_level = logical in postgresql.conf"
                " (or ALTER SYSTEM SET wal_level = logical) and restart PostgreSQL"
            )
        cursor.execute("SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user")
        row = cursor.fetchone()
        if not (row and row[0]):
            raise ConfigurationError(
                f"the database role of {using!r} may not use replication slots:"
                " ALTER ROLE <role> WITH REPLICATION (or use a role that has it)"
            )


def check_ready(definitions: Sequence[Any], using: str) -> None:
    """Raise ConfigurationError unless the database can have slots and each alias has its own (``setup``)."""
    from django.db import connections

    check_database(using)
    names = {slot_name(definition.alias): definition.alias for definition in definitions}
    with connections[using].cursor() as cursor:
        cursor.execute("SELECT slot_name FROM pg_replication_slots WHERE slot_name = ANY(%s)", [list(names)])
        found = {row[0] for row in cursor.fetchall()}
    missing = [alias for name, alias in names.items() if name not in found]
    if missing:
        raise ConfigurationError(f"no replication slot for {', '.join(missing)}: run `reindex slot setup`")


def setup(definitions: Iterable[Any], using: str) -> list[str]:
    """Create each alias's publication and slot (those that exist are brought up to date); the aliases set up.

    The slot starts at the log's current position: changes committed before it are not
    in it (a rebuild covers them). Raises ConfigurationError when the database cannot
    have one (see ``check_database``).
    """
    from django.db import connections, transaction

    check_database(using)
    done = []
    for definition in definitions:
        name = slot_name(definition.alias)
        tables, full = tables_of(definition, using)
        with transaction.atomic(using=using), connections[using].cursor() as cursor:
            previous = _publication_comment(cursor, name)
            listed = ", ".join(_quoted(table) for table in tables)
            if previous is None:
                cursor.execute(f"CREATE PUBLICATION {name} FOR TABLE {listed}")
            else:
                cursor.execute(f"ALTER PUBLICATION {name} SET TABLE {listed}")
            changed = set((previous or {}).get("identity_full", []))
            for table in full:
                if _identity(cursor, table) != "f":
                    cursor.execute(f"ALTER TABLE {_quoted(table)} REPLICA IDENTITY FULL")
                    changed.add(table)
            note = json.dumps({"alias": definition.alias, "identity_full": sorted(changed)})
            cursor.execute(f"COMMENT ON PUBLICATION {name} IS %s", [_COMMENT + note])
        with connections[using].cursor() as cursor:  # not in a transaction that wrote: PostgreSQL refuses
            cursor.execute("SELECT 1 FROM pg_replication_slots WHERE slot_name = %s", [name])
            if cursor.fetchone() is None:
                cursor.execute("SELECT pg_create_logical_replication_slot(%s, %s)", [name, PLUGIN])
        done.append(definition.alias)
    return done


def drop(definitions: Iterable[Any], using: str) -> list[str]:
    """Drop each alias's slot and publication, and the REPLICA IDENTITY FULL setup set that nothing else needs.

    Refuses (ConfigurationError) while a consumer reads the slot. Returns the aliases
    that had something to drop.
    """
    from django.db import connections, transaction

    dropped = []
    for definition in definitions:
        name = slot_name(definition.alias)
        with connections[using].cursor() as cursor:
            cursor.execute("SELECT active, active_pid FROM pg_replication_slots WHERE slot_name = %s", [name])
            row = cursor.fetchone()
            if row and row[0]:
                raise ConfigurationError(
                    f"{definition.alias}: the slot {name} is being read (process {row[1]}): stop `reindex stream` first"
                )
            if row:
                cursor.execute("SELECT pg_drop_replication_slot(%s)", [name])
        with transaction.atomic(using=using), connections[using].cursor() as cursor:
            note = _publication_comment(cursor, name)
            if note is not None:
                cursor.execute(f"DROP PUBLICATION {name}")
                still_needed = _identity_full_of_others(cursor)
                for table in note.get("identity_full", []):
                    if table not in still_needed and _identity(cursor, table) == "f":
                        cursor.execute(f"ALTER TABLE {_quoted(table)} REPLICA IDENTITY DEFAULT")
        if row or note is not None:
            dropped.append(definition.alias)
    return dropped


def slot_status(definitions: Sequence[Any], using: str, config: Config) -> list[SlotStatus]:
    """Each alias's slot as PostgreSQL sees it, with its problems by ``STREAM_MAX_LAG`` and ``STREAM_MAX_RETAINED``."""
    from django.db import connections

    statuses = []
    with connections[using].cursor() as cursor:
        for definition in definitions:
            status = SlotStatus(definition.alias, slot_name(definition.alias))
            _read_slot(cursor, status)
            note = _publication_comment(cursor, status.slot)
            if note is not None:
                status.identity_full = list(note.get("identity_full", []))
                cursor.execute("SELECT tablename FROM pg_publication_tables WHERE pubname = %s", [status.slot])
                status.tables = sorted(row[0] for row in cursor.fetchall())
            status.problems = problems(status, config)
            statuses.append(status)
    return statuses


def _read_slot(cursor: Any, status: SlotStatus) -> None:
    cursor.execute(
        "SELECT active, confirmed_flush_lsn::text, pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn),"
        " pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn) FROM pg_replication_slots WHERE slot_name = %s",
        [status.slot],
    )
    row = cursor.fetchone()
    if row is None:
        return
    status.exists, status.active, status.confirmed_lsn = True, bool(row[0]), row[1]
    status.lag_bytes, status.retained_bytes = int(row[2] or 0), int(row[3] or 0)
    status.lag_seconds = oldest_waiting(cursor, status.slot)


def oldest_waiting(cursor: Any, slot: str) -> float | None:
    """Seconds since the oldest transaction the slot holds for its consumer committed (0.0 when none).

    Peeks at one transaction (PostgreSQL decodes it whole). None while a consumer reads
    the slot (PostgreSQL lets one session use a slot at a time).
    """
    from django.db import DatabaseError, transaction

    from reindex.stream.decoding import Decoder

    try:
        with transaction.atomic(using=cursor.db.alias):
            cursor.execute(
                "SELECT data FROM pg_logical_slot_peek_binary_changes(%s, NULL, 1,"
                " 'proto_version', '1', 'publication_names', %s)",
                [slot, slot],
            )
            rows = cursor.fetchall()
    except DatabaseError:  # in use this moment, or its publication gone
        return None
    transactions = Decoder().decode(row[0] for row in rows)
    if not transactions:
        return 0.0
    age = datetime.datetime.now(datetime.timezone.utc) - transactions[0].committed_at
    return max(0.0, age.total_seconds())


def problems(status: SlotStatus, config: Config) -> list[str]:
    """One line per threshold a slot is past: what to do about it is in docs/stream.md."""
    if not status.exists:
        return [f"no slot {status.slot}: run `reindex slot setup {status.alias}`"]
    found = []
    retained_mb = (status.retained_bytes or 0) / 1024 / 1024
    if retained_mb > config.stream_max_retained:
        found.append(
            f"the slot {status.slot} makes PostgreSQL keep {retained_mb:.0f} MB of WAL"
            f" (more than STREAM_MAX_RETAINED = {config.stream_max_retained:g}): is `reindex stream` running?"
        )
    if status.lag_seconds is not None and status.lag_seconds > config.stream_max_lag:
        found.append(
            f"the oldest change not yet streamed was committed {status.lag_seconds:.0f}s ago"
            f" (more than STREAM_MAX_LAG = {config.stream_max_lag:g})"
        )
    return found


def _publication_comment(cursor: Any, name: str) -> dict[str, Any] | None:
    """What setup wrote on the publication ``name``; None when there is no such publication."""
    cursor.execute(
        "SELECT obj_description(oid, 'pg_publication') FROM pg_publication WHERE pubname = %s",
        [name],
    )
    row = cursor.fetchone()
    if row is None:
        return None
    text = row[0] or ""
    if not text.startswith(_COMMENT):
        raise ConfigurationError(f"the publication {name} was not created by reindex: drop or rename it first")
    return dict(json.loads(text[len(_COMMENT) :]))


def _identity_full_of_others(cursor: Any) -> set[str]:
    """The tables the remaining reindex publications gave REPLICA IDENTITY FULL."""
    cursor.execute(
        "SELECT obj_description(oid, 'pg_publication') FROM pg_publication WHERE pubname LIKE 'reindex\\_%%'"
    )
    tables: set[str] = set()
    for (text,) in cursor.fetchall():
        if text and text.startswith(_COMMENT):
            tables.update(json.loads(text[len(_COMMENT) :]).get("identity_full", []))
    return tables


def _identity(cursor: Any, table: str) -> str:
    cursor.execute("SELECT relreplident FROM pg_class WHERE oid = %s::regclass", [_quoted(table)])
    row = cursor.fetchone()
    return str(row[0]) if row else ""


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
