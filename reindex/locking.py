"""One run per alias across hosts: a lock document held in the search server itself.

The lock of alias ``products`` is document ``products`` in the ``reindex-locks`` index,
created only if absent (``op_type=create``) and holding host, pid, start time and a
heartbeat that a background thread refreshes while the run works::

    with AliasLock(client, "products", ttl=300) as lock:
        ...  # build; lock.check() before anything irreversible

A lock whose heartbeat is older than ``ttl`` seconds is stale. Taking it over, like
every write to a held lock, is a compare-and-swap on the document's ``_seq_no`` and
``_primary_term``, so two runs can never both win it.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from reindex.config import Config
from reindex.errors import Locked, LockLost

logger = logging.getLogger("reindex.locking")

#: Index that holds one lock document per alias (no leading dot: reserved in Elasticsearch).
LOCK_INDEX = Config.lock_index


@dataclass
class LockHolder:
    """What the lock document says about the run that holds it."""

    host: str
    pid: int
    started: float
    heartbeat: float
    token: str

    @classmethod
    def mine(cls) -> LockHolder:
        now = time.time()
        return cls(socket.gethostname(), os.getpid(), now, now, uuid.uuid4().hex)

    @classmethod
    def from_source(cls, source: dict[str, Any]) -> LockHolder:
        return cls(
            str(source.get("host", "?")),
            int(source.get("pid", 0)),
            float(source.get("started", 0)),
            float(source.get("heartbeat", 0)),
            str(source.get("token", "")),
        )

    def as_source(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "pid": self.pid,
            "started": self.started,
            "heartbeat": self.heartbeat,
            "token": self.token,
            "started_at": _iso(self.started),
        }

    def age(self) -> float:
        return time.time() - self.heartbeat


def _iso(epoch: float) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).isoformat(timespec="seconds")


class AliasLock:
    """The lock of one alias; a context manager that acquires, heartbeats and releases."""

    def __init__(self, client: Any, alias: str, ttl: float = Config.lock_ttl, index: str = LOCK_INDEX) -> None:
        self.client = client
        self.alias = alias
        self.ttl = ttl
        self.index = index
        self.holder = LockHolder.mine()
        self.took_over: LockHolder | None = None
        self.lost = False
        self._version: tuple[int, int] | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._write = threading.Lock()

    def __enter__(self) -> AliasLock:
        self.acquire()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.release()

    def acquire(self) -> None:
        """Take the lock, or a stale one over; raise Locked when a live run holds it."""
        ensure_lock_index(self.client, self.index)
        if not self._create():
            self._take_over()
        self._start_heartbeat()

    def _create(self) -> bool:
        from elasticsearch import ConflictError

        try:
            response = self.client.create(index=self.index, id=self.alias, document=self.holder.as_source())
        except ConflictError:
            return False
        self._version = (response["_seq_no"], response["_primary_term"])
        return True

    def _take_over(self) -> None:
        from elasticsearch import ConflictError, NotFoundError

        try:
            found = self.client.get(index=self.index, id=self.alias)
        except NotFoundError:  # released between our create and our get
            if self._create():
                return
            raise Locked.held_by(self.alias, self.read_holder() or self.holder) from None
        current = LockHolder.from_source(found["_source"])
        if current.age() < self.ttl:
            raise Locked.held_by(self.alias, current)
        try:
            self._version = self._put(self.holder, (found["_seq_no"], found["_primary_term"]))
        except ConflictError:  # another run took it over first
            raise Locked.held_by(self.alias, self.read_holder() or current) from None
        self.took_over = current

    def read_holder(self) -> LockHolder | None:
        """Who holds the lock now (None when free)."""
        return read_holder(self.client, self.alias, self.index)

    def _put(self, holder: LockHolder, version: tuple[int, int]) -> tuple[int, int]:
        response = self.client.index(
            index=self.index,
            id=self.alias,
            document=holder.as_source(),
            if_seq_no=version[0],
            if_primary_term=version[1],
        )
        return response["_seq_no"], response["_primary_term"]

    def heartbeat(self) -> None:
        """Refresh the heartbeat; a conflict means another run took the lock over."""
        from elasticsearch import ConflictError, NotFoundError

        with self._write:
            if self.lost or self._version is None:
                return
            self.holder.heartbeat = time.time()
            try:
                self._version = self._put(self.holder, self._version)
            except (ConflictError, NotFoundError):
                self.lost = True

    def _start_heartbeat(self) -> None:
        interval = max(0.05, self.ttl / 4)

        def beat() -> None:
            while not self._stop.wait(interval):
                try:
                    self.heartbeat()
                except Exception:  # a server hiccup: the next beat tries again
                    continue

        self._thread = threading.Thread(target=beat, name=f"reindex-lock-{self.alias}", daemon=True)
        self._thread.start()

    def check(self) -> None:
        """Raise LockLost unless this run still holds the lock (call before the swap)."""
        self.heartbeat()
        if self.lost:
            raise LockLost(f"{self.alias}: another run took the lock over; not swapping")

    def release(self) -> None:
        """Stop the heartbeat and delete the lock document if it is still ours."""
        from elasticsearch import ConflictError, NotFoundError

        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._write:
            if self.lost or self._version is None:
                return
            try:
                self.client.delete(
                    index=self.index, id=self.alias, if_seq_no=self._version[0], if_primary_term=self._version[1]
                )
            except (ConflictError, NotFoundError):  # taken over meanwhile: not ours to delete
                pass
            except Exception as exc:  # the run's own outcome matters more than this
                logger.warning(
                    "%s: could not release the lock (%s); it goes stale %gs after its last heartbeat",
                    self.alias,
                    type(exc).__name__,
                    self.ttl,
                )
            self._version = None


def ensure_lock_index(client: Any, index: str = LOCK_INDEX) -> None:
    """Create the lock index if it does not exist (two runs may race: both are fine)."""
    if client.indices.exists(index=index):
        return
    client.options(ignore_status=400).indices.create(
        index=index,
        settings={"number_of_shards": 1, "auto_expand_replicas": "0-1"},
        mappings={"dynamic": False, "properties": {}},
    )


def read_holder(client: Any, alias: str, index: str = LOCK_INDEX) -> LockHolder | None:
    """Who holds the lock of ``alias`` now (None when free)."""
    from elasticsearch import NotFoundError

    try:
        return LockHolder.from_source(client.get(index=index, id=alias)["_source"])
    except NotFoundError:
        return None
