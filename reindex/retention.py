"""The indexes kept behind an alias: rolling back to one, pruning the old ones.

``rebuild --keep N`` leaves the N most recent previous indexes; ``rollback()`` moves the
alias back to the newest of them in one atomic request, ``prune()`` deletes the rest.
Both hold the alias's lock, so they never race a rebuild.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reindex import indexes
from reindex.errors import ConfigurationError, ReindexError
from reindex.locking import DEFAULT_TTL, LOCK_INDEX, AliasLock


class NoPreviousIndex(ReindexError):
    """There is no kept index to roll back to; nothing was changed."""


@dataclass
class RollbackResult:
    """Where a rollback moved the alias from and to."""

    alias: str
    from_indexes: list[str]
    to_index: str
    count: int

    def as_dict(self) -> dict[str, Any]:
        return {"alias": self.alias, "from": self.from_indexes, "to": self.to_index, "count": self.count}


@dataclass
class PruneResult:
    """What a prune deleted and kept."""

    alias: str
    dropped: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"alias": self.alias, "dropped": self.dropped, "kept": self.kept}


def rollback(client: Any, alias: str, lock_ttl: float = DEFAULT_TTL, lock_index: str = LOCK_INDEX) -> RollbackResult:
    """Point ``alias`` at the newest kept index older than the live one.

    Raises NoPreviousIndex when there is none (e.g. rebuilt without ``--keep``).
    """
    with AliasLock(client, alias, ttl=lock_ttl, index=lock_index):
        live = _live_indexes(client, alias)
        older = [i.name for i in indexes.previous_indexes(client, alias) if i.name < min(live)]
        if not older:
            raise NoPreviousIndex(f"{alias}: no previous index to roll back to (rebuild with --keep 1 to keep one)")
        target = older[0]
        indexes.swap_alias(client, alias, target, live)
        return RollbackResult(alias, live, target, int(client.count(index=target)["count"]))


def prune(
    client: Any, alias: str, keep: int, lock_ttl: float = DEFAULT_TTL, lock_index: str = LOCK_INDEX
) -> PruneResult:
    """Delete this tool's indexes of ``alias`` that are not live, but the ``keep`` newest.

    Builds abandoned by a killed run go too: holding the lock, no run is building.
    """
    with AliasLock(client, alias, ttl=lock_ttl, index=lock_index):
        previous = [i.name for i in indexes.previous_indexes(client, alias)]
        kept, drop = previous[:keep], previous[keep:]
        drop += indexes.abandoned_indexes(client, alias)
        return PruneResult(alias, sorted(indexes.delete_owned(client, alias, drop)), kept)


def _live_indexes(client: Any, alias: str) -> list[str]:
    if indexes.is_concrete_index(client, alias):
        raise ConfigurationError(f"{alias!r} is a concrete index, not an alias; there is nothing to roll back")
    live = indexes.alias_targets(client, alias)
    if not live:
        raise NoPreviousIndex(f"{alias}: the alias does not exist; nothing to roll back")
    return live
