"""What is live behind each alias, what else this tool keeps for it, and which server holds it.

One ``GET /`` names the server; each alias is read on its own::

    server = server_info(client)  # ServerInfo("opensearch", "2.11.0", "http://search:9200")
    for definition in registry:
        print(alias_status(client, definition, server=server).as_dict())
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from reindex.config import Config
from reindex.definitions.definition import IndexDefinition
from reindex.executors.ranges import BuildState
from reindex.results import JsonResult, json_as
from reindex.server import indexes
from reindex.server.drift import definition_fingerprint
from reindex.server.locking import LockState, lock_state, read_holder
from reindex.server.watermarks import Watermark, read_watermark


@dataclass(frozen=True)
class ServerInfo(JsonResult):
    """The server that answered: its distribution (``elasticsearch``, ``opensearch``), version and address."""

    distribution: str
    version: str
    url: str


def server_info(client: Any) -> ServerInfo:
    """Ask the server who it is (``GET /``); Elasticsearch names no distribution, OpenSearch does."""
    response = client.info()
    version = response.body.get("version") or {}
    node = response.meta.node
    host = f"[{node.host}]" if ":" in node.host else node.host
    url = f"{node.scheme}://{host}:{node.port}{node.path_prefix}"
    return ServerInfo(str(version.get("distribution") or "elasticsearch"), str(version.get("number") or "?"), url)


@dataclass
class AliasStatus(JsonResult):
    """The state of one alias on the server."""

    json_placed: ClassVar = {"definition": ("built",)}

    alias: str
    definition: str
    live: list[str] = field(default_factory=list)
    count: int | None = None
    concrete: bool = field(default=False, metadata=json_as("concrete_index"))
    indexes: list[indexes.IndexInfo] = field(default_factory=list)
    #: Whether the live index was built from the definition now in code (None: unknown).
    matches_code: bool | None = None
    #: The run holding the alias's lock now, if any, and when the lock goes stale.
    lock: LockState | None = None
    #: The server it was read from (the same for every alias of a run).
    server: ServerInfo | None = None
    #: For each build under way (or abandoned) with recorded ranges: ranges per state, rows read.
    ranges: dict[str, dict[str, int]] = field(default_factory=dict)
    #: How far the live index is known to be fresh (the last update or rebuild's watermark).
    watermark: Watermark | None = None

    @property
    def built(self) -> bool:
        return bool(self.live)


def alias_status(
    client: Any, definition: IndexDefinition, config: Config | None = None, server: ServerInfo | None = None
) -> AliasStatus:
    """Read the live index, its count, the owned indexes and the lock of ``definition``'s alias."""
    config = config or Config()
    alias = definition.alias
    holder = read_holder(client, alias, config.lock_index)
    lock = None if holder is None else lock_state(holder, config.lock_ttl)
    status = AliasStatus(alias=alias, definition=definition.path, lock=lock, server=server)
    status.watermark = read_watermark(client, alias, config.lock_index)
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
        found = BuildState.find(client, config.lock_index, info.name) if info.building else None
        if found is not None:
            status.ranges[info.name] = found[0].summary(client)
    return status


def matches_code(definition: IndexDefinition, infos: list[indexes.IndexInfo]) -> bool | None:
    """True when every live index carries the fingerprint of ``definition``; None if one has none."""
    live = [i.marker.fingerprint for i in infos if i.live]
    if not live or None in live:
        return None
    return all(f == definition_fingerprint(definition) for f in live)
