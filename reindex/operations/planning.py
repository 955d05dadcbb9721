"""What a rebuild would do, worked out without changing anything on the server.

``plan_rebuild()`` reads the alias, the row count (one ``COUNT`` query), the live
mapping and the owned indexes, predicts the sanity guard from the row count, and
has the server check the definition by creating a throw-away index (an empty
``<alias>-<timestamp>`` marked as building) that it deletes at once. It returns a
``RebuildPlan``::

    plan = plan_rebuild(client, ProductIndex(), Config(keep=1))
    print(plan.new_index, plan.rows, plan.delete, plan.refusal)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from reindex.config import Config
from reindex.definitions.definition import IndexDefinition
from reindex.errors import EXIT_CONFIG, EXIT_FAILED, ConfigurationError
from reindex.operations.rebuilding import check_alias, create_new_index, drop_new_index, ratio_refusal
from reindex.operations.retention import retention
from reindex.results import JsonResult
from reindex.server import indexes
from reindex.server.drift import IndexDrift, drift


@dataclass
class RebuildPlan(JsonResult):
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
    #: Documents behind the alias now (what the sanity guard compares with).
    live_count: int | None = None
    #: Why the real run would fail (the server rejects the definition, the guard refuses), if it would.
    refusal: str | None = None
    #: The exit status the real run would end with: 0, 1 (guard) or 2 (definition rejected).
    exit_status: int = 0


def plan_rebuild(
    client: Any, definition: IndexDefinition, config: Config | None = None, force: bool = False
) -> RebuildPlan:
    """The plan of a rebuild of ``definition`` with ``config`` (``keep``, ``min_ratio``); writes nothing that stays.

    The deletions are those the run would make, by the same rule (``retention()``):
    after the swap the live indexes are previous ones too. A run that would be
    refused deletes only the builds abandoned by a killed run.
    """
    config = config or Config()
    live = check_alias(client, definition.alias)
    plan = RebuildPlan(
        alias=definition.alias,
        definition=definition.path,
        new_index=indexes.new_index_name(definition.alias),
        rows=definition.get_queryset().count(),
        live=live,
        drift=drift(client, definition),
    )
    if live:
        plan.live_count = int(client.count(index=definition.alias)["count"])
    kept = retention(client, definition.alias, config.keep, leaving=live)
    plan.keep, plan.delete, plan.abandoned = kept.kept, kept.delete, kept.abandoned
    rejected = definition_rejection(client, definition)
    refused = live and ratio_refusal(definition.alias, plan.rows, plan.live_count or 0, config.min_ratio, force)
    if rejected or refused:
        plan.refusal = rejected or refused or None
        plan.exit_status = EXIT_CONFIG if rejected else EXIT_FAILED
        plan.keep, plan.delete = [], list(plan.abandoned)
    return plan


def definition_rejection(client: Any, definition: IndexDefinition) -> str | None:
    """What the server says against ``definition``'s settings and mappings (None: it accepts them).

    Creates the new index as a run would, empty, and deletes it at once.
    """
    try:
        name = create_new_index(client, definition)
    except ConfigurationError as exc:
        return str(exc)
    drop_new_index(client, name)
    return None
