"""How far an alias's live index is known to be fresh: the watermark, and the database clock it is read from.

A watermark is a time on the *database's* clock, taken before a run read the rows:
every change committed before it is in the index. ``reindex update`` reads the rows
changed since the last watermark (less ``REINDEX["UPDATE_OVERLAP"]`` seconds) and
records a new one; a rebuild records one when it swaps. It lives beside the alias's
lock, as document ``<alias>:watermark`` in the lock index (``:`` cannot be part of
an alias, so it never meets a lock)::

    now = database_now("default")  # before the read
    ...  # read and send the rows changed since the previous watermark
    record_watermark(client, Watermark("products", now, "update", "products-2026..."))

Why the database's clock, and why the overlap: rows are stamped by the application
(``auto_now``) when they are saved, and committed later. A transaction that stamped a
row just before the watermark was taken and committed just after the read started is
in neither that read nor, without the overlap, the next one. Reading back
``UPDATE_OVERLAP`` seconds more covers transactions up to that long, and as much
disagreement between the application servers' clocks and the database's.
"""

from __future__ import annotations

import datetime
import re
import socket
from dataclasses import dataclass, field
from typing import Any

from reindex.config import Config
from reindex.errors import ConfigurationError
from reindex.results import JsonResult, json_as
from reindex.server.locking import ensure_lock_index

#: What follows the alias in the watermark's document id.
SUFFIX = ":watermark"

#: The current time on each database's clock, outside or inside a transaction.
_NOW_SQL = {
    "postgresql": "SELECT clock_timestamp()",  # now() is the start of the transaction
    "sqlite": "SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')",  # UTC, to the millisecond
    "mysql": "SELECT UTC_TIMESTAMP(6)",
}

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*(s|m|h|d|w)$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class Watermark(JsonResult):
    """Changes committed before ``time`` (the database's clock) are in ``index``."""

    alias: str = field(metadata=json_as(None))
    time: datetime.datetime
    #: The command that recorded it: ``update`` or ``rebuild``.
    command: str
    index: str
    #: When it was recorded, on the recording host's clock, and where.
    recorded_at: str = ""
    host: str = ""

    def age(self, now: datetime.datetime | None = None) -> float:
        """Seconds from the watermark to ``now`` (this host's clock): how old the freshest known state is."""
        now = now or datetime.datetime.now(datetime.timezone.utc)
        return max(0.0, (now - self.time).total_seconds())

    @classmethod
    def from_source(cls, alias: str, source: dict[str, Any]) -> Watermark:
        return cls(
            alias=alias,
            time=datetime.datetime.fromisoformat(str(source["time"])),
            command=str(source.get("command", "")),
            index=str(source.get("index", "")),
            recorded_at=str(source.get("recorded_at", "")),
            host=str(source.get("host", "")),
        )


def read_watermark(client: Any, alias: str, index: str = Config.lock_index) -> Watermark | None:
    """The watermark of ``alias`` (None when no update or rebuild recorded one)."""
    from elasticsearch import NotFoundError

    try:
        found = client.get(index=index, id=alias + SUFFIX)
    except NotFoundError:
        return None
    return Watermark.from_source(alias, found["_source"])


def record_watermark(
    client: Any, alias: str, time: datetime.datetime, command: str, target: str, config: Config
) -> Watermark:
    """Write the watermark of ``alias``: changes before ``time`` are in the index ``target``."""
    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    mark = Watermark(alias, time, command, target, recorded_at=now, host=socket.gethostname())
    ensure_lock_index(client, config.lock_index)
    client.index(index=config.lock_index, id=alias + SUFFIX, document=mark.as_dict())
    return mark


def database_now(using: str) -> datetime.datetime:
    """The current time on the clock of database ``using``, timezone-aware (UTC).

    PostgreSQL, SQLite and MySQL are asked; any other database falls back to this
    host's clock (keep it in step with the database's, or raise the overlap).
    """
    from django.db import connections
    from django.utils import timezone

    connection = connections[using]
    sql = _NOW_SQL.get(connection.vendor)
    if sql is None:
        return timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(sql)
        value = cursor.fetchone()[0]
    if isinstance(value, str):
        value = datetime.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=datetime.timezone.utc)
    return value.astimezone(datetime.timezone.utc)


def parse_since(value: str | datetime.datetime | datetime.timedelta, now: datetime.datetime) -> datetime.datetime:
    """The time ``--since`` means: a duration before ``now`` (``90s``, ``15m``, ``2h``, ``1d``, ``1w``),
    or an ISO time (without a time zone: in Django's current time zone).

    Raises ConfigurationError for anything else.
    """
    if isinstance(value, datetime.timedelta):
        return now - value
    if isinstance(value, datetime.datetime):
        return aware(value)
    text = str(value).strip()
    duration = _DURATION.match(text.lower())
    if duration:
        return now - datetime.timedelta(**{_UNITS[duration.group(2)]: float(duration.group(1))})
    try:
        return aware(datetime.datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        raise ConfigurationError(
            f"--since must be a duration (90s, 15m, 2h, 1d, 1w) or an ISO time (2026-11-27T09:00:00+00:00), "
            f"not {text!r}"
        ) from None


def aware(value: datetime.datetime) -> datetime.datetime:
    """``value`` with a time zone: a naive one is in Django's current time zone."""
    from django.utils import timezone

    return value if value.tzinfo is not None else timezone.make_aware(value)


def for_queries(value: datetime.datetime) -> datetime.datetime:
    """``value`` as the site's queries take it: aware with ``USE_TZ``, else naive in the current time zone."""
    from django.conf import settings
    from django.utils import timezone

    return value if settings.USE_TZ else timezone.make_naive(value)
