"""How fast an alias's queue drains: the last drain pass that sent anything, recorded beside the lock.

A drain pass (``drain_alias``: batches until nothing is due) that settled entries writes
one document, ``<alias>:drain`` in the lock index, overwritten by the next: how many
entries it settled and in how many seconds, and when it ended. One request per pass,
no time series. Public through the API::

    import reindex

    for drained in reindex.last_drains():
        print(drained.alias, drained.rate, drained.finished_at)
"""

from __future__ import annotations

import datetime
import logging
import socket
from dataclasses import dataclass, field
from typing import Any, ClassVar

from reindex.results import JsonResult, json_as
from reindex.server.locking import ensure_lock_index

logger = logging.getLogger("reindex.drain")

#: What follows the alias in the document's id (``:`` is never part of an alias).
SUFFIX = ":drain"


@dataclass(frozen=True)
class DrainPass(JsonResult):
    """One drain pass of an alias: ``entries`` settled (written, deleted, failed) in ``seconds``."""

    json_placed: ClassVar = {"host": (("rate", lambda drained: round(drained.rate, 1)),)}

    alias: str
    entries: int
    seconds: float = field(metadata=json_as(rounded=3))
    #: When the pass ended (UTC, ISO 8601) and on which host.
    finished_at: str
    host: str = ""

    @property
    def rate(self) -> float:
        """Entries settled per second while draining."""
        return self.entries / self.seconds if self.seconds > 0 else float(self.entries)

    def age(self, now: datetime.datetime | None = None) -> float:
        """Seconds since the pass ended."""
        now = now or datetime.datetime.now(datetime.timezone.utc)
        return max(0.0, (now - datetime.datetime.fromisoformat(self.finished_at)).total_seconds())


def record_drain_pass(client: Any, alias: str, entries: int, seconds: float, index: str) -> DrainPass | None:
    """Write the pass's document; a server that fails now only costs the figure (logged), never the drain."""
    from elasticsearch import ApiError, TransportError

    now = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    drained = DrainPass(alias, entries, seconds, now, socket.gethostname())
    source = {k: v for k, v in drained.as_dict().items() if k not in ("alias", "rate")}
    once = client.options(max_retries=0)  # the figure is not worth retrying for
    try:
        ensure_lock_index(once, index)
        once.index(index=index, id=alias + SUFFIX, document=source)
    except (ApiError, TransportError) as exc:
        logger.warning("%s: the drain rate was not recorded: %s", alias, exc)
        return None
    return drained


def read_drain_pass(client: Any, alias: str, index: str) -> DrainPass | None:
    """The last pass recorded for ``alias`` (None when none was)."""
    from elasticsearch import NotFoundError

    try:
        found = client.get(index=index, id=alias + SUFFIX)
    except NotFoundError:
        return None
    source = found["_source"]
    return DrainPass(
        alias,
        int(source["entries"]),
        float(source["seconds"]),
        str(source["finished_at"]),
        str(source.get("host", "")),
    )
