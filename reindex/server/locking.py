"""One run per alias across hosts: a lock document held in the search server itself.

The lock of alias ``products`` is document ``products`` in the ``reindex-locks`` index,
created only if absent (``op_type=create``) and holding host, pid, start time and a
heartbeat that a background thread refreshes while the run works::

    with AliasLock(client, "products", ttl=300) as lock:
        ...  # build; lock.check() before anything irreversible

A lock is stale when its heartbeat is older than ``ttl`` seconds, or at once when its
holder's process is provably gone (``process_gone``: a run killed with ``kill -9`` on
this very host). Taking it over, like every write to a held lock, is a compare-and-swap
on the document's ``_seq_no`` and ``_primary_term``, so two runs can never both win it.
``unlock()`` removes a lock by hand, the same way.
"""

from __future__ import annotations

import datetime
import logging
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from reindex.config import Config
from reindex.errors import Locked, LockHeld, LockLost
from reindex.results import JsonResult, json_as

logger = logging.getLogger("reindex.server.locking")

#: Index that holds one lock document per alias (no leading dot: reserved in Elasticsearch).
LOCK_INDEX = Config.lock_index
#: Why a stale lock was taken over.
PROCESS_GONE, HEARTBEAT_EXPIRED = "process_gone", "heartbeat_expired"


@dataclass
class LockHolder(JsonResult):
    """What the lock document says about the run that holds it.

    ``boot_id``, ``pid_namespace`` and ``process_start`` (Linux; empty elsewhere) say which
    process ``pid`` is, so that a later run can tell whether it is gone (``process_gone``).
    """

    json_placed: ClassVar = {"token": (("started_at", lambda holder: _iso(holder.started)),)}

    host: str
    pid: int
    started: float
    heartbeat: float
    #: Only the holder knows its token (``as_dict()`` shows ``None``): it is what renews and releases the lock.
    token: str = field(metadata=json_as(convert=lambda token: None))
    boot_id: str = ""
    pid_namespace: str = ""
    process_start: int = 0

    @classmethod
    def mine(cls) -> LockHolder:
        now = time.time()
        boot_id, namespace = this_machine()
        start = process_stat(os.getpid())
        return cls(
            socket.gethostname(),
            os.getpid(),
            now,
            now,
            uuid.uuid4().hex,
            boot_id,
            namespace,
            start[1] if start else 0,
        )

    @classmethod
    def from_source(cls, source: dict[str, Any]) -> LockHolder:
        return cls(
            str(source.get("host", "?")),
            int(source.get("pid", 0)),
            float(source.get("started", 0)),
            float(source.get("heartbeat", 0)),
            str(source.get("token", "")),
            str(source.get("boot_id") or ""),
            str(source.get("pid_namespace") or ""),
            int(source.get("process_start") or 0),
        )

    def as_source(self) -> dict[str, Any]:
        """The lock document: ``as_dict()`` with the token."""
        return {**self.as_dict(), "token": self.token}

    def age(self) -> float:
        return time.time() - self.heartbeat


def this_machine() -> tuple[str, str]:
    """``(boot id, pid namespace)`` of this process; empty strings where they cannot be known.

    The boot id (``/proc/sys/kernel/random/boot_id``) changes at every boot and is shared
    by every container on one kernel; the pid namespace (``/proc/self/ns/pid``) tells
    containers on one kernel apart. A ``/proc`` that is not this pid namespace's own (its
    ``self`` is not our pid) cannot vouch for any pid, so the namespace is then unknown.
    """
    try:
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        boot_id = ""
    try:
        namespace = os.readlink("/proc/self/ns/pid") if os.readlink("/proc/self") == str(os.getpid()) else ""
    except OSError:
        namespace = ""
    return boot_id, namespace


def process_stat(pid: int) -> tuple[str, int] | None:
    """``(state, start time in clock ticks after boot)`` of ``pid`` from ``/proc``; None when there is none."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return fields[0], int(fields[19])


def process_gone(holder: LockHolder) -> bool:
    """True when the process that holds the lock provably no longer exists.

    Only a holder on this host (same hostname), in this boot (same boot id) and in this
    pid namespace can be checked: its pid is free (``os.kill(pid, 0)`` finds no process),
    or a zombie, or belongs to a process that started at another time (the pid was
    reused). Anywhere else, or with a lock written without these fields, nothing can be
    proven and the heartbeat's TTL decides.
    """
    here = (socket.gethostname(), *this_machine())
    if (holder.host, holder.boot_id, holder.pid_namespace) != here or not all(here) or holder.pid <= 0:
        return False
    try:
        os.kill(holder.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # a process of another user has the pid: look at which one
        pass
    stat = process_stat(holder.pid)
    if stat is None:
        return True
    state, start = stat
    return state in ("Z", "X") or (holder.process_start != 0 and start != holder.process_start)


@dataclass
class LockState(JsonResult):
    """A held lock as another run sees it: its holder, its heartbeat's age, whether it is stale."""

    json_placed: ClassVar = {"ttl": ("stale", ("stale_in", lambda state: round(state.stale_in, 1)))}

    holder: LockHolder = field(metadata=json_as(flatten=True))
    heartbeat_age: float = field(metadata=json_as(rounded=1))
    ttl: float
    holder_gone: bool

    @property
    def stale(self) -> bool:
        """A stale lock may be taken over (and ``unlock`` removes it without ``--force``)."""
        return self.holder_gone or self.heartbeat_age >= self.ttl

    @property
    def stale_in(self) -> float:
        """Seconds until the lock goes stale (0 when it is)."""
        return 0.0 if self.stale else self.ttl - self.heartbeat_age

    @property
    def reason(self) -> str | None:
        """``PROCESS_GONE``, ``HEARTBEAT_EXPIRED``, or None while the lock is live."""
        return PROCESS_GONE if self.holder_gone else HEARTBEAT_EXPIRED if self.stale else None


def lock_state(holder: LockHolder, ttl: float) -> LockState:
    """How ``holder``'s lock looks now: the one rule for staleness, for runs, ``status`` and ``unlock``."""
    return LockState(holder, heartbeat_age=holder.age(), ttl=ttl, holder_gone=process_gone(holder))


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
        #: Why the lock was taken over: PROCESS_GONE or HEARTBEAT_EXPIRED.
        self.took_over_because: str | None = None
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
        state = lock_state(current, self.ttl)
        if not state.stale:
            raise Locked.held_by(self.alias, current)
        try:
            self._version = self._put(self.holder, (found["_seq_no"], found["_primary_term"]))
        except ConflictError:  # another run took it over first
            raise Locked.held_by(self.alias, self.read_holder() or current) from None
        self.took_over, self.took_over_because = current, state.reason

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


@dataclass
class UnlockResult(JsonResult):
    """What ``unlock`` found and did: the lock (None: not locked), and whether it was removed."""

    json_placed: ClassVar = {"alias": ("locked",)}

    alias: str
    removed: bool = False
    forced: bool = False
    lock: LockState | None = None

    @property
    def locked(self) -> bool:
        return self.lock is not None


def unlock(
    client: Any, alias: str, ttl: float = Config.lock_ttl, index: str = LOCK_INDEX, force: bool = False
) -> UnlockResult:
    """Remove the lock of ``alias`` that a dead run left; refuse (LockHeld) a live holder unless ``force``.

    A holder is live while its heartbeat is younger than ``ttl`` and its process is not
    provably gone. A free lock is no error (re-running is safe). The delete is a
    compare-and-swap on the document read, so a run that takes the lock meanwhile keeps
    it; a live run whose lock is forced away fails before its swap (``LockLost``).
    """
    from elasticsearch import ConflictError, NotFoundError

    try:
        found = client.get(index=index, id=alias)
    except NotFoundError:
        return UnlockResult(alias)
    state = lock_state(LockHolder.from_source(found["_source"]), ttl)
    result = UnlockResult(alias, lock=state, forced=force and not state.stale)
    if not (state.stale or force):
        why = f"the run holding the lock looks alive (stale in {state.stale_in:.0f}s; --force removes it)"
        raise LockHeld(f"{alias}: {why}; not removed", result=result)
    try:
        client.delete(index=index, id=alias, if_seq_no=found["_seq_no"], if_primary_term=found["_primary_term"])
    except NotFoundError:  # released meanwhile
        return UnlockResult(alias)
    except ConflictError:  # a heartbeat or a takeover wrote it meanwhile
        why = "the lock changed while it was being removed (a run holds it now)"
        raise LockHeld(f"{alias}: {why}; not removed", result=result) from None
    result.removed = True
    return result
