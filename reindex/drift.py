"""How far the live index behind an alias has drifted from its definition in code.

``drift()`` reads the live mapping and settings and returns one ``IndexDrift`` per
index behind the alias (none built: one report with ``built == False``)::

    for report in drift(client, ProductIndex()):
        print(report.summary())
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import click

from reindex import indexes
from reindex.definitions import IndexDefinition
from reindex.mappings import ADDED, REMOVED, Difference, compare_mappings, compare_settings, field_paths, fingerprint

#: The marker keys that record what an index was built from.
FINGERPRINT_KEY = "fingerprint"
FIELDS_KEY = "fields"


def definition_fingerprint(definition: IndexDefinition) -> str:
    """The fingerprint of ``definition``'s declared settings and mappings."""
    return fingerprint(definition.get_settings(), definition.get_mappings())


def definition_marker(definition: IndexDefinition) -> dict[str, Any]:
    """What an index records in its ``_meta`` marker about the definition it was built from."""
    return {FINGERPRINT_KEY: definition_fingerprint(definition), FIELDS_KEY: field_paths(definition.get_mappings())}


@dataclass
class IndexDrift:
    """The differences between a definition and one live index (or: not built)."""

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

    def summary(self) -> str:
        """``products: 3 differences (1 in-place, 2 need rebuild)``."""
        if not self.built:
            return f"{self.alias}: not built"
        n = len(self.differences)
        if not n:
            return f"{self.alias}: no differences ({self.index})"
        noun = "difference" if n == 1 else "differences"
        return f"{self.alias}: {n} {noun} ({len(self.in_place)} in-place, {len(self.needs_rebuild)} need rebuild)"

    def as_dict(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "definition": self.definition,
            "built": self.built,
            "index": self.index,
            "differences": [d.as_dict() for d in self.differences],
            "in_place": len(self.in_place),
            "need_rebuild": len(self.needs_rebuild),
        }


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
    marker = (mappings.get("_meta") or {}).get(indexes.META_KEY) or {}
    known = marker.get(FIELDS_KEY)
    differences = compare_mappings(definition.get_mappings(), mappings, known)
    differences += compare_settings(definition.get_settings(), settings)
    return IndexDrift(definition.alias, definition.path, index, differences)


def live_definition(client: Any, index: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The live ``(mappings, flat settings)`` of one concrete index."""
    body = dict(client.indices.get(index=index, flat_settings=True))
    found = body.get(index) or next(iter(body.values()))
    return dict(found.get("mappings") or {}), dict(found.get("settings") or {})


# -- text ----------------------------------------------------------------------------

_MARKS = {ADDED: ("+", "green"), REMOVED: ("-", "red")}


def describe(difference: Difference) -> str:
    """One line for one difference, without colour."""
    d = difference
    if d.kind == ADDED:
        text = f"{d.where}: added {_show(d.declared)}"
    elif d.kind == REMOVED:
        origin = "not declared, from dynamic mapping" if d.dynamic else "removed from the definition"
        text = f"{d.where}: {origin} (live {_show(d.live)})"
    else:
        text = f"{d.where}: {_show(d.live)} -> {_show(d.declared)}"
    return f"{text}  [{d.consequence}]"


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def format_drift(report: IndexDrift) -> list[str]:
    """The lines for one report: a header, one marked line per difference, the summary.

    Lines carry click styles; ``click.echo`` drops them off a terminal.
    """
    if not report.differences:
        return [report.summary()]
    lines = [click.style(f"{report.alias} ({report.index}):", bold=True)]
    for d in report.differences:
        mark, colour = _MARKS.get(d.kind, ("~", "yellow"))
        lines.append(click.style(f"  {mark} {describe(d)}", fg=colour))
    lines.append(report.summary())
    return lines
