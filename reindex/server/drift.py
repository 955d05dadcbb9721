"""How far the live index behind an alias has drifted from its definition in code.

``drift()`` reads the live mapping and settings and returns one ``IndexDrift`` per
index behind the alias (none built: one report with ``built == False``)::

    for report in drift(client, ProductIndex()):
        print(report.index, len(report.in_place), len(report.needs_rebuild))
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from reindex.definitions.definition import IndexDefinition
from reindex.definitions.mappings import Difference, compare_mappings, compare_settings, field_paths, fingerprint
from reindex.results import JsonResult
from reindex.server import indexes
from reindex.server.ownership import read_marker


def definition_fingerprint(definition: IndexDefinition) -> str:
    """The fingerprint of ``definition``'s declared settings and mappings."""
    return fingerprint(definition.get_settings(), definition.get_mappings())


def definition_marker(definition: IndexDefinition) -> dict[str, Any]:
    """What an index's marker records about the definition it was built from: ``fingerprint``, ``fields``."""
    return {"fingerprint": definition_fingerprint(definition), "fields": field_paths(definition.get_mappings())}


@dataclass
class IndexDrift(JsonResult):
    """The differences between a definition and one live index (or: not built)."""

    json_placed: ClassVar = {
        "definition": ("built",),
        "differences": (
            ("in_place", lambda drift: len(drift.in_place)),
            ("need_rebuild", lambda drift: len(drift.needs_rebuild)),
        ),
    }

    alias: str
    definition: str
    index: str | None = None
    differences: list[Difference] = field(default_factory=list)

    @property
    def built(self) -> bool:
        return self.index is not None

    @property
    def in_place(self) -> list[Difference]:
        return [d for d in self.differences if d.in_place]

    @property
    def needs_rebuild(self) -> list[Difference]:
        return [d for d in self.differences if not d.in_place]


def drift(client: Any, definition: IndexDefinition) -> list[IndexDrift]:
    """Compare ``definition`` with each index its alias points at."""
    alias = definition.alias
    targets = [alias] if indexes.is_concrete_index(client, alias) else indexes.alias_targets(client, alias)
    if not targets:
        return [IndexDrift(alias, definition.path)]
    return [index_drift(client, definition, name) for name in targets]


def index_drift(client: Any, definition: IndexDefinition, index: str) -> IndexDrift:
    """Compare ``definition`` with the concrete index ``index``."""
    mappings, settings = live_definition(client, index)
    known = read_marker(mappings).fields
    differences = compare_mappings(definition.get_mappings(), mappings, known)
    differences += compare_settings(definition.get_settings(), settings)
    return IndexDrift(definition.alias, definition.path, index, differences)


def live_definition(client: Any, index: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The live ``(mappings, flat settings)`` of one concrete index."""
    body = dict(client.indices.get(index=index, flat_settings=True))
    found = body.get(index) or next(iter(body.values()))
    return dict(found.get("mappings") or {}), dict(found.get("settings") or {})
