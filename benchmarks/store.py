"""An in-memory document store: the sink's index calls, plus what ``update``, ``sweep`` and ``verify`` read back.

It keeps each document's bytes as received, by index and id (a million catalog
documents take about a gigabyte), and answers ``_bulk`` (index and delete, with
real ``created``/``updated``/``deleted``/``not_found`` results), ``_count``, ``_mget``,
a scroll in ``_doc`` order, and a ``term`` query's total (``size`` 0: how the lag
benchmarks look for a name they wrote), matched on the stored bytes (``"name":"..."``
for ``name`` or its ``name.raw``: exact for the unique names they write). Nothing is
analysed, a document is searchable the moment its bulk request is answered (no refresh
interval), and serving a page costs it next to nothing, so the figures measured
against it are the client's own::

    python benchmarks/store.py        # prints its URL, serves until killed or stdin closes
"""

from __future__ import annotations

import json
import uuid
from http.server import ThreadingHTTPServer
from typing import Any

try:
    from benchmarks import sink
except ImportError:  # run as a script
    import sink  # type: ignore[no-redef]

Handler, State = sink.Handler, sink.State


class StoreState(State):
    """The sink's indexes and aliases, plus every document and the open scrolls."""

    def __init__(self) -> None:
        super().__init__()
        self.stored: dict[str, dict[str, bytes]] = {}  # index -> id -> source
        self.scrolls: dict[str, tuple[str, list[str], int, int, bool]] = {}  # id -> (index, ids, next, size, source)


class StoreHandler(Handler):
    state: StoreState

    def do_POST(self) -> None:
        parts = self.parts()
        if parts == ["_search", "scroll"]:
            return self.scroll_page(json.loads(self.body() or b"{}")["scroll_id"])
        if parts and parts[-1] == "_search":
            return self.search(parts[0], json.loads(self.body() or b"{}"))
        return super().do_POST()

    def do_DELETE(self) -> None:
        if self.parts() == ["_search", "scroll"]:
            for scroll_id in json.loads(self.body() or b"{}").get("scroll_id", []):
                self.state.scrolls.pop(scroll_id, None)
            return self.reply(200, {"succeeded": True, "num_freed": 1})
        if len(self.parts()) == 1:  # an index: its documents go with it
            with self.state.lock:
                for name in self.state.matching(self.parts()[0]):
                    self.state.stored.pop(name, None)
        return super().do_DELETE()

    def count(self, parts: list[str]) -> None:
        with self.state.lock:
            count = sum(len(self.state.stored.get(n, {})) for n in self.state.matching(parts[0]))
        self.reply(200, {"count": count})

    def bulk(self, parts: list[str], data: bytes) -> None:
        first = sink.HEADER_INDEX.match(data)
        if first is not None and first.group(1).decode() in self.state.document_indexes:
            return self.bulk_documents(data)  # the lock index: a build's range documents
        lines = iter(data.splitlines())
        items = []
        with self.state.lock:
            for line in lines:
                if not line.strip():
                    continue
                ((op, meta),) = json.loads(line).items()
                index = meta.get("_index") or parts[0]
                docs = self.state.stored.setdefault(index, {})
                doc_id = str(meta["_id"])
                if op == "delete":
                    found = docs.pop(doc_id, None) is not None
                    result, status = ("deleted", 200) if found else ("not_found", 404)
                else:
                    result, status = ("updated", 200) if doc_id in docs else ("created", 201)
                    docs[doc_id] = next(lines)
                items.append({op: {"_index": index, "_id": doc_id, "status": status, "result": result}})
        self.reply(200, {"took": 0, "errors": False, "items": items})

    def search(self, index: str, body: dict[str, Any]) -> None:
        """A scroll's first page (``?scroll=``), or the first ``size`` documents."""
        query = self.path.partition("?")[2]
        names = self.state.matching(index)
        term = body.get("query", {}).get("term")
        if term:
            return self.reply(200, self.page([], False, self.term_total(names, term)))
        with self.state.lock:
            ids = [(name, doc_id) for name in names for doc_id in self.state.stored.get(name, {})]
        size = int(body.get("size", 10))
        source = body.get("_source", True) is not False and "_source=false" not in query
        if "scroll=" not in query:
            return self.reply(200, self.page(ids[:size], source, len(ids)))
        scroll_id = uuid.uuid4().hex
        self.state.scrolls[scroll_id] = (names[0] if names else index, [i for _, i in ids], 0, size, source)
        self.scroll_page(scroll_id)

    def term_total(self, names: list[str], term: dict[str, Any]) -> int:
        """How many documents of ``names`` hold the term's value in its field (a ``.raw`` subfield: the field)."""
        [(field, value)] = term.items()
        if isinstance(value, dict):
            value = value["value"]
        needle = json.dumps({field.partition(".")[0]: value}, separators=(",", ":"))[1:-1].encode()
        with self.state.lock:
            return sum(needle in source for name in names for source in self.state.stored.get(name, {}).values())

    def scroll_page(self, scroll_id: str) -> None:
        index, ids, start, size, source = self.state.scrolls[scroll_id]
        self.state.scrolls[scroll_id] = (index, ids, start + size, size, source)
        page = self.page([(index, i) for i in ids[start : start + size]], source, len(ids))
        self.reply(200, {"_scroll_id": scroll_id, **page})

    def page(self, ids: list[tuple[str, str]], source: bool, total: int) -> dict[str, Any]:
        hits = []
        for name, doc_id in ids:
            hit: dict[str, Any] = {"_index": name, "_id": doc_id, "_score": None}
            if source:
                hit["_source"] = json.loads(self.state.stored[name][doc_id])
            hits.append(hit)
        shards = {"total": 1, "successful": 1, "skipped": 0, "failed": 0}
        return {"took": 0, "timed_out": False, "_shards": shards, "hits": {"total": {"value": total}, "hits": hits}}

    def mget(self, parts: list[str], data: bytes) -> None:
        """The stored documents, their bytes spliced in as received (the lock index's as the sink keeps them)."""
        if parts[0] in self.state.document_indexes:
            return super().mget(parts, data)
        body = json.loads(data or b"{}")
        [name] = self.state.matching(parts[0]) or [parts[0]]
        docs = self.state.stored.get(name, {})
        answers = []
        for doc_id in body.get("ids", []):
            head = json.dumps({"_index": name, "_id": doc_id, "found": doc_id in docs})[:-1].encode()
            answers.append(head + (b',"_source":' + docs[doc_id] + b"}" if doc_id in docs else b"}"))
        self.reply(200, raw=b'{"docs":[' + b",".join(answers) + b"]}")


def serve(port: int = 0) -> ThreadingHTTPServer:
    """Start the store on a background thread; ``server.server_address`` says where."""
    return sink.serve(port, StoreHandler, StoreState())


if __name__ == "__main__":
    sink.main(serve)
