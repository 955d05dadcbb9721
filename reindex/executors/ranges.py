"""A build's primary-key ranges and the state of each, kept in the search server beside the lock.

Every executor loads a build range by range. The ranges (``after < pk <= upto``) and
the state of each (pending, running, done with its counts, failed) are small documents
in the lock index, so that any process on any machine can load a range and record it,
a coordinator can follow the ranges, and ``rebuild --resume`` can go on with a build
whose coordinator died::

    build = BuildState.start(client, "reindex-locks", definition, "products-2026...", ranges)
    attempt = build.claim(client, 3)  # None when range 3 is done already
    ...  # load it, calling attempt.beat(rows) now and then
    attempt.finish(result)

Documents: ``build:<index>`` (alias, definition, fingerprint, number of ranges) and
``build:<index>:<n>`` for range n. Every write of a range is a compare-and-swap on its
``_seq_no``/``_primary_term`` from the attempt's own last write: an attempt whose range
was claimed again since (a redelivered Celery task, a range resent after a stall, a
resumed build) or whose build is gone (its coordinator gave up) raises ``Superseded``
and stops without writing its result. So a range records the counts of exactly one
attempt, whatever ran it twice.
"""

from __future__ import annotations

import logging
import math
import os
import socket
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from reindex.definitions.definition import IndexDefinition
from reindex.definitions.documents import Failure, delete_actions, dumps
from reindex.errors import ConfigurationError, Superseded
from reindex.pipeline.loading import LoadCounts
from reindex.server import indexes
from reindex.server.connection import describe_failure
from reindex.server.drift import definition_fingerprint
from reindex.server.locking import ensure_lock_index
from reindex.server.sending import BulkOptions, send_all

logger = logging.getLogger("reindex.executors.ranges")

PENDING, RUNNING, DONE, FAILED = "pending", "running", "done", "failed"
#: Ranges per worker process at least: enough that a worker with a slow range does not hold up the end.
RANGES_PER_WORKER = 4
#: Range documents per ``_mget`` or ``_bulk`` request.
CHUNK = 500


def encode_pk(value: Any) -> Any:
    """A primary-key bound as JSON: integers as numbers, anything else (str, UUID, date) as its string."""
    if value is None or (isinstance(value, int) and not isinstance(value, bool)):
        return value
    return str(value)


def decode_pk(queryset: Any, value: Any) -> Any:
    """A bound read back, as the primary key field's Python value."""
    return None if value is None else queryset.model._meta.pk.to_python(value)


def range_count(total: int, executor: str, workers: int, range_size: int) -> int:
    """How many ranges a build of ``total`` rows gets: at most ``range_size`` rows each, and
    ``RANGES_PER_WORKER`` per worker process when other processes load them."""
    parts = math.ceil(total / range_size)
    if executor != "local":
        parts = max(parts, workers * RANGES_PER_WORKER)
    return max(1, parts)


def pk_ranges(queryset: Any, total: int, parts: int) -> list[tuple[Any, Any]]:
    """Split the rows into at most ``parts`` ranges of about equal size, at primary-key quantiles.

    One query, numbering the rows in primary-key order with a window function (no
    OFFSET); works for any orderable primary key, however sparse.
    """
    from django.db.models import F, Window
    from django.db.models.functions import RowNumber

    if parts <= 1 or total <= parts:
        return [(None, None)]
    step = math.ceil(total / parts)
    bounds = list(
        queryset.order_by()
        .values_list("pk", flat=True)
        .annotate(position=Window(RowNumber(), order_by=F("pk").asc()))
        .annotate(phase=F("position") % step)
        .filter(phase=0, position__lt=total)
        .order_by("pk")
    )
    return list(zip([None, *bounds], [*bounds, None], strict=True))


@dataclass
class RangeResult:
    """What one attempt at a range did: its counts, the rows it reports, why it failed (if it did)."""

    number: int
    counts: LoadCounts = field(default_factory=LoadCounts)
    #: Failed rows and duplicate ids, as ``on_failure`` gets them (the first 100 of each).
    reports: list[Failure] = field(default_factory=list)
    error: str | None = None
    error_type: str | None = None

    def as_source(self) -> dict[str, Any]:
        c = self.counts
        return {
            "counts": {"rows_read": c.rows_read, "indexed": c.indexed, "failed": c.failed, "duplicates": c.duplicates},
            "reports": [r.as_dict() for r in self.reports],
            "error": self.error,
            "error_type": self.error_type,
        }

    @classmethod
    def from_source(cls, number: int, source: dict[str, Any]) -> RangeResult:
        counts = LoadCounts(**(source.get("counts") or {}))
        reports = [Failure(r.get("id"), r.get("reason", ""), r.get("error_type")) for r in source.get("reports", [])]
        counts.failures = [r for r in reports if r.error_type != "duplicate_id"]
        return cls(number, counts, reports, source.get("error"), source.get("error_type"))


@dataclass
class RangeState:
    """One range as its document says: bounds, state, progress, and the result once done or failed."""

    number: int
    after: Any
    upto: Any
    state: str = PENDING
    attempts: int = 0
    #: Rows read so far by the attempt running it.
    rows: int = 0
    heartbeat: float = 0.0
    worker: str | None = None
    result: RangeResult | None = None

    @classmethod
    def from_source(cls, number: int, source: dict[str, Any]) -> RangeState:
        finished = source.get("state") in (DONE, FAILED)
        return cls(
            number,
            source.get("after"),
            source.get("upto"),
            source.get("state", PENDING),
            int(source.get("attempts", 0)),
            int(source.get("rows", 0)),
            float(source.get("heartbeat", 0)),
            source.get("worker"),
            RangeResult.from_source(number, source) if finished else None,
        )


@dataclass(frozen=True)
class BuildState:
    """Where the range documents of the build of ``index`` live (picklable: workers get it)."""

    state_index: str
    index: str
    ranges: int

    @property
    def header_id(self) -> str:
        return f"build:{self.index}"

    def range_id(self, number: int) -> str:
        return f"build:{self.index}:{number}"

    @classmethod
    def start(
        cls,
        client: Any,
        state_index: str,
        definition: IndexDefinition,
        index: str,
        bounds: list[tuple[Any, Any]],
        options: BulkOptions | None = None,
    ) -> BuildState:
        """Write the header and one pending document per range of a new build (rejected writes retried)."""
        ensure_lock_index(client, state_index)
        build = cls(state_index, index, len(bounds))
        header = {
            "kind": "build",
            "alias": definition.alias,
            "definition": definition.path,
            "fingerprint": definition_fingerprint(definition),
            "index": index,
            "ranges": len(bounds),
            "started": time.time(),
        }
        client.index(index=state_index, id=build.header_id, document=header)
        actions = [
            (
                {"index": {"_index": state_index, "_id": build.range_id(n)}},
                dumps({"number": n, "after": encode_pk(a), "upto": encode_pk(u), "state": PENDING}),
            )
            for n, (a, u) in enumerate(bounds)
        ]
        send_all(client, actions, options or BulkOptions())
        return build

    @classmethod
    def find(cls, client: Any, state_index: str, index: str) -> tuple[BuildState, dict[str, Any]] | None:
        """The build of ``index`` and its header, if its state was recorded."""
        from elasticsearch import NotFoundError

        try:
            source = client.get(index=state_index, id=f"build:{index}")["_source"]
        except NotFoundError:
            return None
        return cls(state_index, index, int(source["ranges"])), source

    def alive(self, client: Any) -> bool:
        """True while the build's header exists: its coordinator has not given up."""
        return bool(client.exists(index=self.state_index, id=self.header_id))

    def read(self, client: Any, numbers: list[int] | None = None) -> list[RangeState]:
        """The state of ranges ``numbers`` (all by default), read in real time."""
        numbers = list(range(self.ranges)) if numbers is None else numbers
        found = []
        for start in range(0, len(numbers), CHUNK):
            ids = [self.range_id(n) for n in numbers[start : start + CHUNK]]
            for doc in client.mget(index=self.state_index, ids=ids)["docs"]:
                if doc.get("found"):
                    found.append(RangeState.from_source(int(doc["_source"]["number"]), doc["_source"]))
        return found

    def summary(self, client: Any) -> dict[str, int]:
        """How many ranges are in each state, and the rows read so far: what ``status`` shows."""
        found = self.read(client)
        counts = {state: sum(r.state == state for r in found) for state in (DONE, RUNNING, FAILED)}
        counts[PENDING] = self.ranges - sum(counts.values())
        return {"ranges": self.ranges, **counts, "rows_read": sum(r.rows for r in found)}

    def claim(self, client: Any, number: int) -> Attempt | None:
        """Take range ``number`` for this process; None when it is done (or claimed this very moment).

        A running or failed range is taken over: its attempt is gone (a killed worker) or
        is told to stop at its next write. Raises Superseded when the build is gone.
        """
        from elasticsearch import ConflictError, NotFoundError

        try:
            found = client.get(index=self.state_index, id=self.range_id(number))
        except NotFoundError:
            raise Superseded(f"{self.index}: the build is gone") from None
        if not self.alive(client):
            raise Superseded(f"{self.index}: the build is gone")
        source = found["_source"]
        if source.get("state") == DONE:
            return None
        attempts = int(source.get("attempts", 0))
        claimed = {
            **source,
            "state": RUNNING,
            "attempts": attempts + 1,
            "token": uuid.uuid4().hex,
            "worker": f"{socket.gethostname()}:{os.getpid()}",
            "heartbeat": time.time(),
            "rows": 0,
        }
        try:
            version = self._put(client, number, claimed, (found["_seq_no"], found["_primary_term"]))
        except ConflictError:
            return None
        return Attempt(client, self, number, claimed, version, rerun=attempts > 0)

    def _put(self, client: Any, number: int, source: dict[str, Any], version: tuple[int, int]) -> tuple[int, int]:
        response = client.index(
            index=self.state_index,
            id=self.range_id(number),
            document=source,
            if_seq_no=version[0],
            if_primary_term=version[1],
        )
        return response["_seq_no"], response["_primary_term"]


@dataclass
class Attempt:
    """One process's claim on one range: its bounds, and the writes that record how it goes."""

    client: Any
    build: BuildState
    number: int
    source: dict[str, Any]
    version: tuple[int, int]
    #: The range was claimed before (a killed worker, a resumed build): its documents may be in the index.
    rerun: bool = False

    @property
    def after(self) -> Any:
        return self.source.get("after")

    @property
    def upto(self) -> Any:
        return self.source.get("upto")

    def beat(self, rows: int) -> None:
        """Record progress and that this attempt is alive; Superseded if it is no longer wanted.

        One request: a build given up has its range documents deleted, so the write fails then.
        """
        self._write({"rows": rows, "heartbeat": time.time()})

    def finish(self, result: RangeResult) -> None:
        """Record the range as done with ``result``'s counts (or failed, when it has an error)."""
        state = FAILED if result.error else DONE
        self._write({"state": state, "rows": result.counts.rows_read, "heartbeat": time.time(), **result.as_source()})

    def _write(self, changes: dict[str, Any]) -> None:
        from elasticsearch import ConflictError, NotFoundError

        source = {**self.source, **changes}
        try:
            self.version = self.build._put(self.client, self.number, source, self.version)
        except (ConflictError, NotFoundError):
            raise Superseded(f"{self.build.index}: range {self.number} was claimed by another attempt") from None
        self.source = source


def forget_builds(client: Any, state_index: str, names: list[str], options: BulkOptions | None = None) -> None:
    """Delete the recorded state of the builds of ``names`` (indexes deleted or gone live).

    Best effort: the builds are over, and a run's own outcome matters more than this.
    The header goes first (a task about to claim a range then stops), then the range
    documents (a task loading one stops at its next heartbeat, within a second).
    """
    for name in names:
        try:
            client.options(ignore_status=404).delete(index=state_index, id=queue_writes_id(name))
            found = BuildState.find(client, state_index, name)
            if found is None:
                continue
            build = found[0]
            client.options(ignore_status=404).delete(index=state_index, id=build.header_id)
            ids = [build.range_id(n) for n in range(build.ranges)]
            send_all(client, list(delete_actions(state_index, ids)), options or BulkOptions())
        except Exception as exc:
            logger.warning("%s: could not delete the recorded ranges of the build (%s)", name, describe_failure(exc))


@dataclass(frozen=True)
class QueueWrites:
    """The change queue's writes into a building index: index actions and delete actions sent there.

    A drainer records them (``record_queue_writes``) *before* it sends them, so that a
    rebuild that counts its new index and then reads this record knows every write the
    queue may have made before the count: the documents the count may hold beside the
    rebuild's own, or lack.
    """

    indexed: int = 0
    deleted: int = 0


def queue_writes_id(index: str) -> str:
    return f"queue:{index}"


def record_queue_writes(client: Any, state_index: str, index: str, indexed: int, deleted: int) -> None:
    """Add to the queue's writes recorded for building ``index`` (a compare-and-swap: drainers may race)."""
    from elasticsearch import ConflictError, NotFoundError

    doc_id = queue_writes_id(index)
    while True:
        try:
            found = client.get(index=state_index, id=doc_id)
        except NotFoundError:
            try:
                client.create(index=state_index, id=doc_id, document={"indexed": indexed, "deleted": deleted})
                return
            except ConflictError:
                continue  # another drainer created it this very moment
        before = found["_source"]
        document = {"indexed": int(before["indexed"]) + indexed, "deleted": int(before["deleted"]) + deleted}
        try:
            client.index(
                index=state_index,
                id=doc_id,
                document=document,
                if_seq_no=found["_seq_no"],
                if_primary_term=found["_primary_term"],
            )
            return
        except ConflictError:
            continue


def queue_writes(client: Any, state_index: str, index: str) -> QueueWrites:
    """What the change queue recorded sending into building ``index`` so far (nothing when no record)."""
    from elasticsearch import NotFoundError

    try:
        source = client.get(index=state_index, id=queue_writes_id(index))["_source"]
    except NotFoundError:
        return QueueWrites()
    return QueueWrites(int(source["indexed"]), int(source["deleted"]))


def resumable(client: Any, definition: IndexDefinition, state_index: str) -> str | None:
    """The newest build of ``definition``'s alias that a killed run left with its ranges recorded.

    Raises ConfigurationError when that build was made from another definition: its
    documents would not match the mappings in code.
    """
    abandoned = [i for i in indexes.owned_indexes(client, definition.alias, with_counts=False) if i.building]
    for info in sorted(abandoned, key=lambda i: i.name, reverse=True):
        found = BuildState.find(client, state_index, info.name)
        if found is None:
            continue
        if found[1].get("fingerprint") != definition_fingerprint(definition):
            raise ConfigurationError(
                f"{definition.alias}: cannot resume {info.name}: it was built from another definition of the alias "
                "(mappings or settings changed since); rebuild without --resume to start afresh"
            )
        return info.name
    return None


def dropped_if_recreated(client: Any, index: str) -> bool:
    """Delete ``index`` if a bulk request re-created it after its build was deleted (no marker).

    A write that reaches the server just after the coordinator deleted the index creates
    it anew (``action.auto_create_index``), with a dynamic mapping and no marker.
    """
    from elasticsearch import NotFoundError

    from reindex.server.ownership import read_marker

    try:
        body = client.indices.get_mapping(index=index)
    except NotFoundError:
        return False
    if read_marker(body.get(index, {}).get("mappings")).owner is not None:
        return False
    client.options(ignore_status=404).indices.delete(index=index)
    return True
