"""Deletes that leave no trace: remove the documents whose rows are gone or left the queryset.

A row deleted outright has no timestamp for ``update`` to find. ``sweep()`` walks
the live index's ids page by page (``reindex.server.stored``), asks the database which of
each page's rows ``get_queryset()`` still returns (one ``pk IN (...)`` query per
page: no query per document), and deletes the documents of the others in bulk.
Memory is bounded by the page, so it works on tables of millions of rows.
Internal: users call it through the public API::

    import reindex

    [result] = reindex.sweep("products")
    print(result.documents, result.deleted)

The rebuild sweeps its new index the same way before the swap, for the rows
deleted while it loaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import closing, nullcontext
from dataclasses import dataclass, field
from typing import Any, ClassVar

from reindex import interrupts
from reindex.config import Config
from reindex.definitions.definition import IndexDefinition
from reindex.definitions.documents import Action, delete_actions
from reindex.operations.outcomes import RunOutcome, failing_into
from reindex.operations.retention import held_lock
from reindex.pipeline.loading import FailureCallback, LoadCounts, Progress, ProgressFactory, Tally, log_start, send
from reindex.results import JsonResult, json_as
from reindex.server import indexes
from reindex.server.stored import id_pages


@dataclass(kw_only=True)
class SweepResult(RunOutcome, LoadCounts, JsonResult):
    """What one sweep did: documents checked and deleted (``sweep --json``)."""

    json_placed: ClassVar = {"documents": ("deleted", "failed", "failures"), "seconds": ("skipped", "error")}

    alias: str
    definition: str
    index: str | None = None
    #: Documents checked against the table.
    documents: int = 0
    seconds: float = field(default=0.0, metadata=json_as(rounded=3))


def sweep(
    definition: IndexDefinition,
    client: Any,
    config: Config | None = None,
    *,
    progress: ProgressFactory | None = None,
    on_failure: FailureCallback | None = None,
) -> SweepResult:
    """Delete from the live index of ``definition``'s alias the documents whose rows are gone or filtered out.

    Holds the alias's lock. Raises ConfigurationError (not built), Locked, or RunFailed.
    """
    config = config or Config()
    result = SweepResult(alias=definition.alias, definition=definition.path)
    with failing_into(result), held_lock(client, definition.alias, config):
        definition.check_ids()
        result.index = index = indexes.serving_index(client, definition.alias)
        documents = int(client.count(index=index)["count"])
        log_start(definition.alias, "sweep", f"{documents:,} documents in {index}")
        bar = progress(documents, definition.alias) if progress else None
        with nullcontext() if bar is None else closing(bar):
            result.documents = sweep_index(client, definition, index, result, config, bar=bar, on_failure=on_failure)
    return result


def sweep_index(
    client: Any,
    definition: IndexDefinition,
    index: str,
    counts: LoadCounts,
    config: Config,
    *,
    bar: Progress | None = None,
    on_failure: FailureCallback | None = None,
    max_errors: int | None = None,
) -> int:
    """Delete the documents of ``index`` whose rows ``definition.get_queryset()`` no longer returns.

    Counts the deletions in ``counts``; returns how many documents were checked.
    """
    size = config.batch_size_for(definition)
    allowed = config.max_errors if max_errors is None else max_errors
    tally = Tally(definition.alias, counts, allowed, on_failure)
    checked = 0

    def batches() -> Iterator[list[Action]]:
        nonlocal checked
        for page, orphans in orphan_pages(definition, id_pages(client, index, size)):
            interrupts.check()
            checked += len(page)
            if bar is not None:
                bar.update(len(page))
            if orphans:
                yield list(delete_actions(index, orphans))

    send(client, batches(), tally, config)
    return checked


def orphan_pages(definition: IndexDefinition, pages: Iterable[list[str]]) -> Iterator[tuple[list[str], list[str]]]:
    """For each page of document ids: the page, and the ids whose rows the queryset no longer returns."""
    queryset = definition.get_queryset()
    for page in pages:
        yield page, orphans_of(definition, queryset, page)


def orphans_of(definition: IndexDefinition, queryset: Any, doc_ids: list[str]) -> list[str]:
    """Those of ``doc_ids`` whose rows ``queryset`` does not return (one ``pk IN (...)`` query)."""
    from django.core.exceptions import ValidationError

    pks: dict[str, Any] = {}
    orphans = []
    for doc_id in doc_ids:
        try:
            pks[doc_id] = definition.pk_from_id(doc_id)
        except (ValidationError, ValueError, TypeError):  # no row can have this id
            orphans.append(doc_id)
    present = rows_present(queryset, pks.values())
    return orphans + [doc_id for doc_id, pk in pks.items() if pk not in present]


def rows_present(queryset: Any, pks: Iterable[Any]) -> set[Any]:
    """Which of ``pks`` ``queryset`` returns: one query for their primary keys only."""
    pks = list(pks)
    if not pks:
        return set()
    return set(queryset.prefetch_related(None).order_by().filter(pk__in=pks).values_list("pk", flat=True))
