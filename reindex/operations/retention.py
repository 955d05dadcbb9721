"""The indexes kept behind an alias: which stay, rolling back to one, pruning the rest.

One rule, ``retention()``, decides what stays, for ``rebuild`` (after its swap), for
``prune`` and for ``rebuild --dry-run``: of the indexes this tool built for the alias
that went live once and are live no more, the ``keep`` newest stay and the others go;
builds a killed run abandoned go whatever ``keep`` says. ``rollback()`` moves the
alias back to the newest kept index in one atomic request. Both hold the alias's
lock, so they never race a rebuild::

    result = prune(client, "products", keep=1)
    print(result.dropped, result.kept)
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from reindex import interrupts
from reindex.config import Config
from reindex.errors import ConfigurationError, Locked, NoPreviousIndex
from reindex.executors.ranges import forget_builds
from reindex.results import JsonResult, json_as
from reindex.server import indexes
from reindex.server.locking import AliasLock
from reindex.server.sending import BulkOptions

#: Seconds between two tries to take a held lock, while waiting for it.
LOCK_POLL = 1.0


@dataclass
class Retention:
    """Which of an alias's previous indexes stay and which go."""

    kept: list[str] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    #: Those of ``delete`` that were builds abandoned by a killed run.
    abandoned: list[str] = field(default_factory=list)


def retention(
    client: Any, alias: str, keep: int, *, leaving: Iterable[str] = (), before: str | None = None
) -> Retention:
    """What stays of ``alias``'s previous indexes when ``keep`` of them are kept.

    ``leaving``: indexes live now that will be previous ones when the run is done (a
    planned swap). ``before``: judge only indexes older than this one (a newer run's
    are not ours). Abandoned builds are listed for deletion; only the holder of the
    alias's lock may delete them, since without it one could be a running build.
    """
    infos = indexes.owned_indexes(client, alias, with_counts=False)
    leaving = set(leaving)

    def judged(name: str) -> bool:
        return before is None or name < before

    previous = [i.name for i in infos if i.owned and (not i.live or i.name in leaving) and not i.building]
    previous = sorted(filter(judged, previous), reverse=True)
    abandoned = [i.name for i in infos if i.building and judged(i.name)]
    return Retention(kept=previous[:keep], delete=previous[keep:] + abandoned, abandoned=abandoned)


@dataclass
class RollbackResult(JsonResult):
    """Where a rollback moved the alias from and to."""

    alias: str
    from_indexes: list[str] = field(metadata=json_as("from"))
    to_index: str = field(metadata=json_as("to"))
    count: int


@dataclass
class PruneResult(JsonResult):
    """What a prune deleted and kept."""

    alias: str
    dropped: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def lock_of(client: Any, alias: str, config: Config) -> AliasLock:
    """The lock of ``alias`` as ``config`` says (time to live, index)."""
    return AliasLock(client, alias, ttl=config.lock_ttl, index=config.lock_index)


@contextmanager
def held_lock(client: Any, alias: str, config: Config) -> Iterator[AliasLock]:
    """Hold the lock of ``alias`` for the block, waiting up to ``config.lock_wait`` seconds for it.

    Cron starts the nightly rebuild in the same second as the update of every minute;
    a short wait lets the rebuild take the lock once the update, done in a second or
    two, releases it, instead of skipping the night. Raises Locked once the wait is over.
    """
    lock = lock_of(client, alias, config)
    deadline = time.monotonic() + config.lock_wait
    while True:
        try:
            lock.acquire()
            break
        except Locked as exc:
            left = deadline - time.monotonic()
            if left <= 0:
                if not config.lock_wait or exc.holder is None:
                    raise
                raise Locked.held_by(alias, exc.holder, waited=config.lock_wait) from None
            interrupts.sleep(min(LOCK_POLL, left))
    try:
        yield lock
    finally:
        lock.release()


def rollback(client: Any, alias: str, config: Config | None = None) -> RollbackResult:
    """Point ``alias`` at the newest kept index older than the live one.

    Raises NoPreviousIndex when there is none (e.g. rebuilt without ``keep``).
    """
    with lock_of(client, alias, config or Config()):
        live = _live_indexes(client, alias)
        older = [i.name for i in indexes.previous_indexes(client, alias) if i.name < min(live)]
        if not older:
            raise NoPreviousIndex(f"{alias}: no previous index to roll back to (rebuild with --keep 1 to keep one)")
        target = older[0]
        indexes.swap_alias(client, alias, target, live)
        return RollbackResult(alias, live, target, int(client.count(index=target)["count"]))


def prune(client: Any, alias: str, keep: int, config: Config | None = None) -> PruneResult:
    """Delete this tool's indexes of ``alias`` that are not live, but the ``keep`` newest.

    Builds abandoned by a killed run go too: holding the lock, no run is building.
    """
    config = config or Config()
    with lock_of(client, alias, config):
        plan = retention(client, alias, keep)
        dropped = sorted(indexes.delete_owned(client, alias, plan.delete))
        abandoned = [name for name in dropped if name in plan.abandoned]
        forget_builds(client, config.lock_index, abandoned, BulkOptions.from_config(config))
        return PruneResult(alias, dropped, plan.kept)


def _live_indexes(client: Any, alias: str) -> list[str]:
    if indexes.is_concrete_index(client, alias):
        raise ConfigurationError(f"{alias!r} is a concrete index, not an alias; there is nothing to roll back")
    live = indexes.alias_targets(client, alias)
    if not live:
        raise NoPreviousIndex(f"{alias}: the alias does not exist; nothing to roll back")
    return live
