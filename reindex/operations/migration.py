"""Applying a definition's in-place differences to the live index, without a rebuild.

New fields, new multi-fields, updatable field parameters (``ignore_above``,
``search_analyzer``...) and dynamic settings (replicas, refresh interval...) go to
the live index through the put-mapping and put-settings APIs. If any difference
needs a rebuild, nothing is applied::

    [result] = migrate(client, ProductIndex())
    print(result.index, [d.path for d in result.applied])
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reindex.definitions.definition import IndexDefinition
from reindex.definitions.mappings import Difference, flatten
from reindex.errors import ConfigurationError, NeedsRebuild
from reindex.results import JsonResult
from reindex.server.drift import IndexDrift, definition_marker, drift, live_definition
from reindex.server.ownership import migrated_meta


@dataclass
class MigrateResult(JsonResult):
    """What ``migrate`` applied (or, with ``dry_run``, would apply) to one index."""

    alias: str
    index: str
    dry_run: bool = False
    applied: list[Difference] = field(default_factory=list)
    #: Documents already in the index that the mapping change does not reach (they were
    #: indexed before it: a new field is missing from them) until they are sent again.
    documents_to_fill: int = 0


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
            raise NeedsRebuild.for_differences(definition.alias, report.needs_rebuild)
    return [apply_in_place(client, definition, report, dry_run) for report in reports]


def apply_in_place(client: Any, definition: IndexDefinition, report: IndexDrift, dry_run: bool) -> MigrateResult:
    """Put the declared mappings and changed dynamic settings on ``report.index``."""
    assert report.index is not None
    result = MigrateResult(definition.alias, report.index, dry_run, list(report.in_place))
    if any(d.section == "mappings" for d in report.in_place):
        # Elasticsearch applies a mapping change to documents indexed after it only.
        result.documents_to_fill = int(client.count(index=report.index)["count"])
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
    return migrated_meta(live_mappings.get("_meta"), declared, **definition_marker(definition))
