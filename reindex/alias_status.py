"""What is live behind each alias, and what else this tool keeps for it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reindex import indexes
from reindex.config import Config
from reindex.definitions import IndexDefinition
from reindex.drift import definition_fingerprint
from reindex.locking import LockHolder, read_holder
from reindex.ranges import BuildState


@dataclass
class AliasStatus:
    """The state of one alias on the server."""

    alias: str
    definition: str
    live: list[str] = field(default_factory=list)
    count: int | None = None
    concrete: bool = False
    indexes: list[indexes.IndexInfo] = field(default_factory=list)
    #: Whether the live index was built from the definition now in code (None: unknown).
    matches_code: bool | None = None
    #: The run holding the alias's lock now, if any.
    lock: LockHolder | None = None
    #: For each build under way (or abandoned) with recorded ranges: ranges per state, rows read.
    ranges: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def built(self) -> bool:
        return bool(self.live)

    def as_dict(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "definition": self.definition,
            "built": self.built,
            "live": self.live,
            "count": self.count,
            "concrete_index": self.concrete,
            "indexes": [i.as_dict() for i in self.indexes],
            "matches_code": self.matches_code,
            "lock": None if self.lock is None else {**self.lock.as_source(), "token": None},
            "ranges": self.ranges,
        }


def alias_status(client: Any, definition: IndexDefinition, lock_index: str = Config.lock_index) -> AliasStatus:
    """Read the live index, its count, the owned indexes and the lock of ``definition``'s alias."""
    alias = definition.alias
    status = AliasStatus(alias=alias, definition=definition.path, lock=read_holder(client, alias, lock_index))
    if indexes.is_concrete_index(client, alias):
        status.concrete = True
        status.count = int(client.count(index=alias)["count"])
        return status
    status.live = indexes.alias_targets(client, alias)
    if status.live:
        status.count = int(client.count(index=alias)["count"])
    status.indexes = [i for i in indexes.owned_indexes(client, alias) if i.owned or i.live]
    status.matches_code = matches_code(definition, status.indexes)
    for info in status.indexes:
        found = BuildState.find(client, lock_index, info.name) if info.building else None
        if found is not None:
            status.ranges[info.name] = found[0].summary(client)
    return status


def matches_code(definition: IndexDefinition, infos: list[indexes.IndexInfo]) -> bool | None:
    """True when every live index carries the fingerprint of ``definition``; None if one has none."""
    live = [i.marker.fingerprint for i in infos if i.live]
    if not live or None in live:
        return None
    return all(f == definition_fingerprint(definition) for f in live)
