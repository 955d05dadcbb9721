"""Indexes and aliases on the server: naming, creating, listing, swapping, dropping.

Only indexes carrying this tool's marker for the alias (``reindex.server.ownership``) are
ever deleted::

    for info in owned_indexes(client, "products"):
        print(info.name, info.live, info.building, info.count)
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any, ClassVar

from reindex.errors import ConfigurationError
from reindex.results import JsonResult, json_as
from reindex.server.connection import error_reason
from reindex.server.ownership import Marker, read_marker, went_live_meta


def new_index_name(alias: str, now: datetime.datetime | None = None) -> str:
    """``<alias>-<UTC timestamp to the microsecond>``: lowercase and sortable."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    return f"{alias}-{now:%Y%m%d%H%M%S%f}"


@dataclass
class IndexInfo(JsonResult):
    """One index named after an alias, with what its marker says."""

    json_placed: ClassVar = {"live": ("building", "created", "went_live", "fingerprint")}

    name: str
    owned: bool
    live: bool
    count: int | None
    marker: Marker = field(metadata=json_as(None))

    @property
    def created(self) -> str | None:
        return self.marker.created

    @property
    def went_live(self) -> str | None:
        """When the alias first moved to the index (None: never, or built before this was recorded)."""
        return self.marker.went_live

    @property
    def fingerprint(self) -> str | None:
        """The fingerprint of the definition the index was built (or last migrated) from."""
        return self.marker.fingerprint

    @property
    def building(self) -> bool:
        """Created by a run and never went live: loading now, or abandoned by a killed run."""
        return self.owned and not self.live and self.marker.building


def alias_targets(client: Any, alias: str) -> list[str]:
    """The indexes the alias points at now (empty if it does not exist)."""
    from elasticsearch import NotFoundError

    try:
        found = client.indices.get_alias(name=alias)
    except NotFoundError:
        return []
    return sorted(name for name, body in dict(found).items() if alias in body.get("aliases", {}))


def is_concrete_index(client: Any, name: str) -> bool:
    """True when ``name`` is a real index rather than an alias (or nothing)."""
    if not client.indices.exists(index=name):
        return False
    return not client.indices.exists_alias(name=name)


def serving_index(client: Any, alias: str) -> str:
    """The one index ``alias`` serves, to write to or walk (the name itself when it is a concrete index).

    Raises ConfigurationError when the alias is not built, or points at several indexes.
    """
    targets = alias_targets(client, alias)  # one request where the alias is there: a drain asks every batch
    if not targets:
        if client.indices.exists(index=alias):  # a concrete index of that name
            return alias
        raise ConfigurationError(f"{alias}: not built; run reindex rebuild {alias} first")
    if len(targets) > 1:
        raise ConfigurationError(
            f"{alias}: the alias points at {len(targets)} indexes ({', '.join(targets)}); "
            "this command works on one index: point the alias at one (reindex rebuild does)"
        )
    return targets[0]


def owned_indexes(client: Any, alias: str, with_counts: bool = True) -> list[IndexInfo]:
    """Indexes named ``<alias>-*`` with their ownership, oldest first."""
    from elasticsearch import NotFoundError

    try:
        found = dict(client.indices.get(index=f"{alias}-*", expand_wildcards="open,closed"))
    except NotFoundError:
        return []
    live = set(alias_targets(client, alias))
    infos = []
    for name, body in found.items():
        marker = read_marker(body.get("mappings"))
        count = None
        if with_counts:
            try:
                count = int(client.count(index=name)["count"])
            except NotFoundError:
                continue
        infos.append(IndexInfo(name, marker.owned_for(alias), name in live, count, marker))
    return sorted(infos, key=lambda i: i.name)


def create_index(client: Any, name: str, settings: dict[str, Any], mappings: dict[str, Any]) -> None:
    """Create ``name``; a server that rejects the definition raises ConfigurationError."""
    from elasticsearch import BadRequestError

    try:
        client.indices.create(index=name, settings=settings, mappings=mappings)
    except BadRequestError as exc:
        raise ConfigurationError(f"the server rejected the definition of {name}: {error_reason(exc)}") from None


def swap_alias(client: Any, alias: str, new_index: str, old_indexes: list[str], remove_index: list[str] = ()) -> None:  # type: ignore[assignment]
    """Point ``alias`` at ``new_index`` only, in one atomic ``_aliases`` request."""
    actions: list[dict[str, Any]] = [{"remove": {"index": old, "alias": alias}} for old in old_indexes]
    actions += [{"remove_index": {"index": name}} for name in remove_index]
    actions.append({"add": {"index": new_index, "alias": alias}})
    client.indices.update_aliases(actions=actions)


def delete_owned(client: Any, alias: str, names: list[str]) -> list[str]:
    """Delete those of ``names`` that this tool owns for ``alias``; return the deleted."""
    from elasticsearch import NotFoundError

    owned = {i.name for i in owned_indexes(client, alias, with_counts=False) if i.owned and not i.live}
    deleted = []
    for name in names:
        if name not in owned:
            continue
        try:
            client.indices.delete(index=name)
        except NotFoundError:
            continue
        deleted.append(name)
    return deleted


def mark_live(client: Any, name: str) -> None:
    """Record in ``name``'s ``_meta`` that it went live (it was created as building)."""
    mappings = client.indices.get_mapping(index=name)[name]["mappings"]
    client.indices.put_mapping(index=name, meta=went_live_meta(mappings.get("_meta")))


def abandoned_indexes(client: Any, alias: str) -> list[str]:
    """Owned indexes of ``alias`` that never went live and are not live now.

    Only the holder of the alias's lock may delete them: without the lock one of them
    could be a running build.
    """
    return [i.name for i in owned_indexes(client, alias, with_counts=False) if i.building]


def previous_indexes(client: Any, alias: str) -> list[IndexInfo]:
    """Owned indexes of ``alias`` that went live once and are not live now, newest first."""
    found = [i for i in owned_indexes(client, alias, with_counts=False) if i.owned and not i.live and not i.building]
    return sorted(found, key=lambda i: i.name, reverse=True)
