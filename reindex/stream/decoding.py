"""The messages of PostgreSQL's ``pgoutput`` plugin (protocol version 1), read into plain data.

``pg_logical_slot_peek_binary_changes(slot, NULL, n, 'proto_version', '1',
'publication_names', 'reindex_products')`` returns one row per message; ``decode``
turns them into the transactions they make up::

    transactions = decode(rows)   # rows: (lsn, data bytes)
    for transaction in transactions:
        transaction.end_lsn, transaction.committed_at
        for change in transaction.changes:
            change.table, change.kind, change.new, change.old  # columns by name, as text

The format: https://www.postgresql.org/docs/current/protocol-logicalrep-message-formats.html.
Values arrive in their text form (``'42'``); a column whose value did not change and
is stored out of line (TOAST) is ``UNCHANGED``; ``NULL`` is None. A Relation message
precedes the first change of each table in a decoding session, and again when the
table's columns changed (a migration added one): columns are looked up by name, so a
new column changes nothing.
"""

from __future__ import annotations

import datetime
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

#: A column stored out of line and not changed by an UPDATE: pgoutput does not send its value.
UNCHANGED = object()
#: pgoutput's timestamps count microseconds from 2000-01-01 UTC.
_EPOCH = datetime.datetime(2000, 1, 1, tzinfo=datetime.timezone.utc)

INSERT, UPDATE, DELETE, TRUNCATE = "insert", "update", "delete", "truncate"

#: The unpackers of the formats read, by format (``struct.Struct`` once, not a lookup per field).
_STRUCTS: dict[str, struct.Struct] = {}
_LENGTH = struct.Struct("!I")


class DecodingError(ValueError):
    """A message this reader does not understand (another protocol version, a damaged row)."""


@dataclass(frozen=True)
class Relation:
    """A table as the Relation message describes it: its columns in order, which belong to the replica identity."""

    oid: int
    schema: str
    name: str
    #: ``d`` default (primary key), ``f`` full, ``i`` an index, ``n`` nothing.
    identity: str
    columns: tuple[str, ...]
    key_columns: tuple[str, ...]


@dataclass(frozen=True)
class Change:
    """One row changed (or a table truncated): the new values and, for UPDATE/DELETE, the old ones it was sent."""

    table: str
    schema: str
    kind: str
    new: dict[str, Any] | None = None
    #: The replica identity's columns (the primary key), or every column with REPLICA IDENTITY FULL.
    old: dict[str, Any] | None = None


@dataclass
class Transaction:
    """A committed transaction: its changes in order, and where it ends in the log."""

    xid: int
    committed_at: datetime.datetime
    changes: list[Change] = field(default_factory=list)
    #: The log position just past its commit: confirming it consumes this transaction.
    end_lsn: str = ""


class _Reader:
    """A cursor over one message's bytes."""

    def __init__(self, data: bytes) -> None:
        self.data, self.at = data, 0

    def take(self, fmt: str) -> Any:
        unpacker = _STRUCTS.get(fmt) or _STRUCTS.setdefault(fmt, struct.Struct(fmt))
        if self.at + unpacker.size > len(self.data):
            raise DecodingError("message ends early")
        (value,) = unpacker.unpack_from(self.data, self.at)
        self.at += unpacker.size
        return value

    def byte(self) -> str:
        return chr(self.take("!B"))

    def string(self) -> str:
        end = self.data.find(b"\0", self.at)
        if end < 0:
            raise DecodingError("string without its end")
        text = self.data[self.at : end].decode()
        self.at = end + 1
        return text

    def raw(self, size: int) -> bytes:
        if self.at + size > len(self.data):
            raise DecodingError("value ends early")
        chunk = self.data[self.at : self.at + size]
        self.at += size
        return chunk

    def tuple(self, relation: Relation) -> dict[str, Any]:
        # The one loop that runs for every column of every row changed: on local names, without a
        # method call per field (1.5-2x faster than through take() and raw() on a product's row).
        count = self.take("!H")
        data, at, end, columns = self.data, self.at, len(self.data), relation.columns
        values: dict[str, Any] = {}
        for position in range(count):
            if at >= end:
                raise DecodingError("message ends early")
            kind = data[at]
            at += 1
            if kind == 0x6E:  # n
                value: Any = None
            elif kind == 0x75:  # u
                value = UNCHANGED
            elif kind in (0x74, 0x62):  # t, b
                if at + 4 > end:
                    raise DecodingError("message ends early")
                (size,) = _LENGTH.unpack_from(data, at)
                at += 4
                if at + size > end:
                    raise DecodingError("value ends early")
                value = data[at : at + size]
                at += size
                value = value.decode() if kind == 0x74 else value
            else:
                raise DecodingError(f"unknown column kind {chr(kind)!r}")
            if position < len(columns):
                values[columns[position]] = value
        self.at = at
        return values


def lsn_text(value: int) -> str:
    """A log position as PostgreSQL writes it: ``16/B374D848``."""
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def lsn_value(text: str) -> int:
    high, low = text.split("/")
    return (int(high, 16) << 32) | int(low, 16)


def _timestamp(micros: int) -> datetime.datetime:
    return _EPOCH + datetime.timedelta(microseconds=micros)


class Decoder:
    """Reads a session's messages in order; keeps the Relation messages (a session sends each once)."""

    def __init__(self) -> None:
        self.relations: dict[int, Relation] = {}

    def decode(self, messages: Iterable[bytes]) -> list[Transaction]:
        """The complete transactions among ``messages`` (a transaction cut off at the end is left out)."""
        done: list[Transaction] = []
        current: Transaction | None = None
        for data in messages:
            reader = _Reader(bytes(data))
            kind = reader.byte()
            if kind == "B":
                reader.take("!Q")  # the commit's position, given again by the Commit message
                committed = _timestamp(reader.take("!q"))
                current = Transaction(xid=reader.take("!I"), committed_at=committed)
            elif kind == "C":
                reader.take("!B")  # flags
                reader.take("!Q")  # the commit record
                end = reader.take("!Q")
                if current is not None:
                    current.end_lsn = lsn_text(end)
                    done.append(current)
                current = None
            elif kind == "R":
                self._relation(reader)
            elif kind in ("I", "U", "D", "T"):
                if current is None:
                    raise DecodingError(f"a change ({kind!r}) outside a transaction")
                current.changes.extend(self._changes(kind, reader))
            elif kind in ("O", "Y", "M"):
                continue  # origin, type, logical message: nothing a document depends on
            else:
                raise DecodingError(f"unknown pgoutput message {kind!r}")
        return done

    def _relation(self, reader: _Reader) -> None:
        oid, schema, name = reader.take("!I"), reader.string(), reader.string()
        identity = reader.byte()
        columns, keys = [], []
        for _ in range(reader.take("!H")):
            flags, column = reader.take("!B"), reader.string()
            reader.take("!I")  # type
            reader.take("!i")  # modifier
            columns.append(column)
            if flags & 1:
                keys.append(column)
        self.relations[oid] = Relation(oid, schema, name, identity, tuple(columns), tuple(keys))

    def _table(self, oid: int) -> Relation:
        try:
            return self.relations[oid]
        except KeyError:
            raise DecodingError(f"a change of relation {oid} before its Relation message") from None

    def _changes(self, kind: str, reader: _Reader) -> list[Change]:
        if kind == "T":
            count = reader.take("!I")
            reader.take("!B")  # options: CASCADE, RESTART IDENTITY
            tables = [self._table(reader.take("!I")) for _ in range(count)]
            return [Change(table.name, table.schema, TRUNCATE) for table in tables]
        relation = self._table(reader.take("!I"))
        new = old = None
        marker = reader.byte()
        if marker in ("K", "O"):
            old = reader.tuple(relation)
            marker = reader.byte() if kind == "U" else ""
        if marker == "N":
            new = reader.tuple(relation)
        elif kind != "D":
            raise DecodingError(f"unexpected tuple marker {marker!r}")
        what = {"I": INSERT, "U": UPDATE, "D": DELETE}[kind]
        return [Change(relation.name, relation.schema, what, new=new, old=old)]
