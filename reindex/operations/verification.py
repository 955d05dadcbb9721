"""Does the live index agree with the table? Counts, missing documents, orphans, stale documents.

``verify()`` compares the alias's live index with ``get_queryset()``:

- the number of rows and of documents;
- *missing*: rows without a document;
- *orphans*: documents whose rows are gone or filtered out;
- *stale*: documents that differ from what ``prepare()`` builds now (both sides
  serialised as a rebuild sends them, then decoded, so that ``Decimal("1.50")``
  and ``1.5`` agree).

``full=True`` checks everything, with bounded memory: the rows in keyset batches, each
batch's documents fetched with one ``_mget``; then the index's ids page by page,
each page's rows looked up with one ``pk IN (...)`` query. Otherwise ``sample`` random
rows and ``sample`` random documents are checked. Reads only::

    result = verify(ProductIndex(), client, Config.load(), full=True)
    if not result.agrees:
        print(result.missing, result.orphans, result.stale)
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import closing, nullcontext
from dataclasses import dataclass, field
from typing import Any, ClassVar

from reindex import interrupts
from reindex.config import Config
from reindex.definitions.definition import IndexDefinition
from reindex.definitions.documents import Action, Failure, build_batches, iter_batches, loads
from reindex.operations.sweeping import orphan_pages
from reindex.pipeline.changes import change_batches
from reindex.pipeline.loading import Progress, ProgressFactory, chunked
from reindex.results import JsonResult, json_as
from reindex.server import indexes
from reindex.server.stored import id_pages, random_ids, sources

#: Rows (and documents) checked when neither a sample size nor ``full`` is given.
DEFAULT_SAMPLE = 1000
#: Ids of each kind of drift kept in a report (all are counted).
IDS_KEPT = 10


@dataclass
class VerifyResult(JsonResult):
    """How the live index compares with the table (``verify --json``)."""

    json_placed: ClassVar = {"mode": ("agrees",)}

    alias: str
    definition: str
    index: str
    #: ``full``, or ``sample``.
    mode: str
    rows: int = 0
    documents: int = 0
    checked_rows: int = 0
    checked_documents: int = 0
    missing: int = 0
    orphans: int = 0
    stale: int = 0
    #: Rows whose document could not be built (``prepare()`` failed): not compared.
    failed: int = 0
    missing_ids: list[str] = field(default_factory=list)
    orphan_ids: list[str] = field(default_factory=list)
    stale_ids: list[str] = field(default_factory=list)
    failed_ids: list[str] = field(default_factory=list)
    seconds: float = field(default=0.0, metadata=json_as(rounded=3))

    @property
    def agrees(self) -> bool:
        """True when the counts match and nothing is missing, orphaned or stale."""
        return self.rows == self.documents and not (self.missing or self.orphans or self.stale)

    def note(self, kind: str, doc_id: Any) -> None:
        """Count one document of ``kind`` (``missing``, ``orphans``, ``stale``, ``failed``) and keep its id."""
        setattr(self, kind, getattr(self, kind) + 1)
        kept = getattr(self, f"{kind.removesuffix('s')}_ids")
        if len(kept) < IDS_KEPT:
            kept.append(str(doc_id))


def verify(
    definition: IndexDefinition,
    client: Any,
    config: Config | None = None,
    *,
    sample: int | None = None,
    full: bool = False,
    progress: ProgressFactory | None = None,
) -> VerifyResult:
    """Compare the live index of ``definition``'s alias with its rows: all of them (``full``) or a sample.

    Raises ConfigurationError when the alias is not built.
    """
    config = config or Config()
    definition.check_ids()
    started = time.monotonic()
    index = indexes.serving_index(client, definition.alias)
    client.indices.refresh(index=index)  # so that the count sees the writes of the last second
    result = VerifyResult(definition.alias, definition.path, index, "full" if full else "sample")
    queryset = definition.get_queryset()
    result.rows, result.documents = queryset.count(), int(client.count(index=index)["count"])
    check = Check(definition, client, config, result)
    size = sample or DEFAULT_SAMPLE
    total = result.rows + result.documents if full else 2 * size
    bar = progress(total, definition.alias) if progress else None
    with nullcontext() if bar is None else closing(bar):
        check.bar = bar
        if full:
            check.rows(iter_batches(queryset, config.batch_size_for(definition), cursor=definition.cursor_reads))
            check.documents(id_pages(client, index, config.batch_size_for(definition)))
        else:
            picked = list(queryset.prefetch_related(None).order_by("?").values_list("pk", flat=True)[:size])
            chunks = chunked(iter(picked), size)
            check.rows(rows for rows, _ in change_batches(queryset, chunks, cursor=definition.cursor_reads))
            check.documents(iter([random_ids(client, index, size)]))
    result.seconds = time.monotonic() - started
    return result


@dataclass
class Check:
    """One comparison under way: rows against their documents, documents against their rows."""

    definition: IndexDefinition
    client: Any
    config: Config
    result: VerifyResult
    bar: Progress | None = None

    def rows(self, batches: Iterator[list[Any]]) -> None:
        """Build each row's document as a rebuild would and compare it with the stored one."""
        result = self.result

        def read(n: int) -> None:
            interrupts.check()
            result.checked_rows += n
            self.tick(n)

        def failed(failure: Failure) -> None:
            result.note("failed", failure.id)

        for actions in build_batches(self.definition, result.index, batches, read, failed):
            self.compare(actions)

    def compare(self, chunk: list[Action]) -> None:
        stored = sources(self.client, self.result.index, [header["index"]["_id"] for header, _ in chunk])
        for header, body in chunk:
            doc_id = header["index"]["_id"]
            if doc_id not in stored:
                self.result.note("missing", doc_id)
            elif body is None or loads(body) != stored[doc_id]:
                self.result.note("stale", doc_id)

    def documents(self, pages: Iterator[list[str]]) -> None:
        """Look up each document's row: those the queryset no longer returns are orphans."""
        for page, orphans in orphan_pages(self.definition, pages):
            interrupts.check()
            self.result.checked_documents += len(page)
            self.tick(len(page))
            for doc_id in orphans:
                self.result.note("orphans", doc_id)

    def tick(self, n: int) -> None:
        if self.bar is not None and n:
            self.bar.update(n)
