"""What a rebuild would do, worked out without writing anything to the server.

``plan_rebuild()`` reads the alias, the row count (one ``COUNT`` query), the live
mapping and the owned indexes, and returns a ``RebuildPlan``::

    plan = plan_rebuild(client, ProductIndex(), keep=1)
    print(plan.new_index, plan.rows, plan.delete)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reindex import indexes
from reindex.definitions import IndexDefinition
from reindex.drift import IndexDrift, drift
from reindex.rebuilding import check_alias
from reindex.retention import retention


@dataclass
class RebuildPlan:
    """The index a rebuild would create, the rows it would read, what it would drop."""

    alias: str
    definition: str
    new_index: str
    rows: int
    live: list[str] = field(default_factory=list)
    drift: list[IndexDrift] = field(default_factory=list)
    delete: list[str] = field(default_factory=list)
    keep: list[str] = field(default_factory=list)
    abandoned: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "alias": self.alias,
            "definition": self.definition,
            "new_index": self.new_index,
            "rows": self.rows,
            "live": self.live,
            "drift": [d.as_dict() for d in self.drift],
            "delete": self.delete,
            "keep": self.keep,
            "abandoned": self.abandoned,
        }


def plan_rebuild(client: Any, definition: IndexDefinition, keep: int = 0) -> RebuildPlan:
    """The plan of a rebuild of ``definition`` that keeps ``keep`` previous indexes; writes nothing.

    The deletions are those the run would make, by the same rule (``retention()``):
    after the swap the live indexes are previous ones too.
    """
    live = check_alias(client, definition.alias)
    plan = RebuildPlan(
        alias=definition.alias,
        definition=definition.path,
        new_index=indexes.new_index_name(definition.alias),
        rows=definition.get_queryset().count(),
        live=live,
        drift=drift(client, definition),
    )
    kept = retention(client, definition.alias, keep, leaving=live)
    plan.keep, plan.delete, plan.abandoned = kept.kept, kept.delete, kept.abandoned
    return plan
