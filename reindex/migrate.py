"""Applying a definition's in-place differences to the live index, without a rebuild.

New fields, new multi-fields, updatable field parameters (``ignore_above``,
``search_analyzer``...) and dynamic settings (replicas, refresh interval...) go to
the live index through the put-mapping and put-settings APIs. If any difference
needs a rebuild, nothing is applied::

    result = migrate(client, ProductIndex())
    print([d.describe() for d in result.applied])
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass, field
from typing import Any

from reindex import indexes
from reindex.definitions import IndexDefinition
from reindex.drift import IndexDrift, definition_marker, drift, live_definition
from reindex.errors import ConfigurationError, ReindexError
from reindex.mappings import Difference, flatten


class NeedsRebuild(ReindexError):
    """Some differences cannot be applied in place; ``differences`` lists them."""

    def __init__(self, alias: str, differences: list[Difference]) -> None:
        self.differences = differences
        n = len(differences)
        what = "1 difference needs" if n == 1 else f"{n} differences need"
        super().__init__(f"{alias}: {what} a rebuild; nothing was applied")


@dataclass
class MigrateResult:
    """What ``migrate`` applied (or, with ``dry_run``, would apply) to one index."""

    alias: str
    index: str
    applied: list[Difference] = field(default_factory=list)
    dry_run: bool = False

    def summary(self) -> str:
        """``products: applied 2 in-place changes to products-2026...``."""
        n = len(self.applied)
        if not n:
            return f"{self.alias}: nothing to apply to {self.index}"
        verb = "would apply" if self.dry_run else "applied"
        return f"{self.alias}: {verb} {n} in-place change{'s' if n != 1 else ''} to {self.index}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "index": self.index,
            "dry_run": self.dry_run,
            "applied": [d.as_dict() for d in self.applied],
        }


def migrate(client: Any, definition: IndexDefinition, dry_run: bool = False) -> list[MigrateResult]:
    """Apply the in-place differences to every index behind the alias.

    Raises ConfigurationError when the alias is not built, NeedsRebuild when any
    difference needs a rebuild (then nothing is written).
    """
    reports = drift(client, definition)
    if not reports[0].built:
        raise ConfigurationError(f"{definition.alias}: not built; run reindex rebuild {definition.alias}")
    for report in reports:
        if report.needs_rebuild:
            raise NeedsRebuild(definition.alias, report.needs_rebuild)
    return [apply_in_place(client, definition, report, dry_run) for report in reports]


def apply_in_place(client: Any, definition: IndexDefinition, report: IndexDrift, dry_run: bool) -> MigrateResult:
    """Put the declared mappings and changed dynamic settings on ``report.index``."""
    assert report.index is not None
    result = MigrateResult(definition.alias, report.index, list(report.in_place), dry_run)
    if dry_run or not report.differences:
        return result
    settings = {d.path: definition_setting(definition, d.path) for d in report.in_place if d.section == "settings"}
    if settings:
        client.indices.put_settings(index=report.index, settings={"index": settings})
    mappings = definition.get_mappings()
    mappings["_meta"] = updated_meta(client, definition, report.index, mappings.get("_meta"))
    client.indices.put_mapping(index=report.index, body=mappings)
    return result


def definition_setting(definition: IndexDefinition, key: str) -> Any:
    """The declared value of a flat setting key, as the definition wrote it."""
    flat = {k.removeprefix("index."): v for k, v in flatten(definition.get_settings()).items()}
    return flat[key]


def updated_meta(client: Any, definition: IndexDefinition, index: str, declared: Any) -> dict[str, Any]:
    """The live ``_meta`` with the marker updated to the definition now applied."""
    live_mappings, _ = live_definition(client, index)
    meta = {**(live_mappings.get("_meta") or {}), **(declared or {})}
    marker = dict(meta.get(indexes.META_KEY) or {})
    marker.update(definition_marker(definition))
    marker["migrated"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    meta[indexes.META_KEY] = marker
    return meta
