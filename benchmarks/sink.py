"""A do-nothing bulk endpoint: accepts ``_bulk`` and the few index calls, stores no document.

It lets a benchmark measure what the indexing client costs without the search
server's cost. ``_bulk`` answers one well-formed item per action (status 201) and
counts the documents per index, so ``_count`` and the rebuild's verification agree::

    python benchmarks/sink.py          # prints its URL, serves until killed or stdin closes
"""

from __future__ import annotations

import gzip
import json
import re
import sys
import threading
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

#: A bulk action's header line, and the same with its ``_index`` captured (it may be absent).
HEADER = re.compile(rb'^\{\s*"(?:index|create)"\s*:\s*\{', re.MULTILINE)
HEADER_INDEX = re.compile(rb'^\{\s*"(?:index|create)"\s*:\s*\{[^\n}]*?"_index"\s*:\s*"([^"]+)"', re.MULTILINE)
ITEM = b'{"index":{"status":201,"result":"created"}}'
INFO = {"name": "sink", "cluster_name": "sink", "version": {"number": "9.0.0"}, "tagline": "You Know, for Search"}


def count_actions(data: bytes) -> Counter[str | None]:
    """Index and create actions per ``_index`` (None: not named) in a bulk body.

    The sink must cost next to nothing, or on a small machine it takes CPU from the
    client it measures: a body whose header lines are all compact and name one index
    (what the client sends) is counted with ``bytes.count``, 40x cheaper than the
    regexes that every other body falls back to.
    """
    first = HEADER_INDEX.match(data)
    if first is not None:
        headers = sum(data.count(b"\n" + h) + data.startswith(h) for h in (b'{"index":{', b'{"create":{'))
        lines = data.count(b"\n") + (not data.endswith(b"\n"))
        # A document cannot hold "_index" (a metadata field), nor a string the raw quotes.
        same = data.count(b'"_index":"' + first.group(1) + b'"')
        if lines == 2 * headers == 2 * same:  # every action is a header naming that index plus its document
            return Counter({first.group(1).decode(): same})
    counts: Counter[str | None] = Counter(t.decode() for t in HEADER_INDEX.findall(data))
    counts[None] = len(HEADER.findall(data)) - counts.total()
    return +counts


class State:
    """Indexes, their mappings, aliases and the documents received per index."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.indexes: dict[str, dict[str, Any]] = {}  # name -> {"mappings": ..., "count": n}
        self.aliases: dict[str, set[str]] = {}  # alias -> index names
        self.docs: dict[tuple[str, str], tuple[int, Any]] = {}  # the lock documents: (seq_no, source)
        self.document_indexes: set[str] = set()  # indexes that hold such documents (the lock index)
        self.seq_no = 0

    def matching(self, pattern: str) -> list[str]:
        regex = re.compile("|".join(re.escape(p).replace(r"\*", ".*") for p in pattern.split(",")) + "$")
        names = [n for n in self.indexes if regex.match(n)]
        for alias, targets in self.aliases.items():
            if regex.match(alias):
                names.extend(targets)
        return sorted(set(names))


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go in two writes
    state: State

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return

    def body(self) -> bytes:
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Content-Encoding") == "gzip":
            data = gzip.decompress(data)
        return data

    def reply(self, status: int, payload: Any = None, raw: bytes | None = None) -> None:
        data = raw if raw is not None else (b"" if payload is None else json.dumps(payload).encode())
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("X-Elastic-Product", "Elasticsearch")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def parts(self) -> list[str]:
        return [unquote(p) for p in self.path.split("?", 1)[0].split("/") if p]

    def do_HEAD(self) -> None:
        parts, st = self.parts(), self.state
        if parts[:1] == ["_alias"]:
            found = parts[1] in st.aliases and bool(st.aliases[parts[1]])
        elif len(parts) == 3 and parts[1] == "_doc":
            found = (parts[0], parts[2]) in st.docs
        else:
            found = bool(parts) and (parts[0] in st.indexes or bool(st.aliases.get(parts[0])))
        self.reply(200 if found else 404)

    def do_GET(self) -> None:
        parts, st = self.parts(), self.state
        data = self.body()
        if parts and parts[-1] == "_mget":
            return self.mget(parts, data)
        if not parts:
            return self.reply(200, INFO)
        if parts == ["_alias"]:
            return self.reply(
                200, {i: {"aliases": {a: {} for a, t in st.aliases.items() if i in t}} for i in st.indexes}
            )
        if parts[0] == "_alias":
            targets = sorted(st.aliases.get(parts[1], ()))
            if not targets:
                return self.reply(404, {"error": "alias missing", "status": 404})
            return self.reply(200, {t: {"aliases": {parts[1]: {}}} for t in targets})
        if parts[-1] == "_count":
            return self.count(parts)
        if len(parts) == 3 and parts[1] == "_doc":
            return self.get_doc(parts[0], parts[2])
        names = st.matching(parts[0])
        if not names:
            return self.reply(404, {"error": {"type": "index_not_found_exception"}, "status": 404})
        return self.reply(
            200, {n: {"aliases": {}, "mappings": st.indexes[n]["mappings"], "settings": {}} for n in names}
        )

    def do_PUT(self) -> None:
        parts, st, data = self.parts(), self.state, self.body()
        if parts and parts[-1] == "_bulk":
            return self.bulk(parts, data)
        if len(parts) == 3 and parts[1] in ("_doc", "_create"):
            return self.put_doc(parts[0], parts[2], data, create=parts[1] == "_create")
        if len(parts) == 1:
            body = json.loads(data or b"{}")
            with st.lock:
                st.indexes[parts[0]] = {"mappings": body.get("mappings", {}), "count": 0}
            return self.reply(200, {"acknowledged": True, "index": parts[0]})
        return self.reply(200, {"acknowledged": True})

    def do_POST(self) -> None:
        parts, st, data = self.parts(), self.state, self.body()
        if parts and parts[-1] == "_bulk":
            return self.bulk(parts, data)
        if parts and parts[-1] == "_count":
            return self.count(parts)
        if parts and parts[-1] == "_mget":
            return self.mget(parts, data)
        if parts == ["_aliases"]:
            with st.lock:
                for action in json.loads(data)["actions"]:
                    ((kind, spec),) = action.items()
                    if kind == "add":
                        st.aliases.setdefault(spec["alias"], set()).add(spec["index"])
                    elif kind == "remove":
                        st.aliases.get(spec["alias"], set()).discard(spec["index"])
                    elif kind == "remove_index":
                        st.indexes.pop(spec["index"], None)
        return self.reply(200, {"acknowledged": True, "_shards": {"total": 1, "successful": 1, "failed": 0}})

    def count(self, parts: list[str]) -> None:
        with self.state.lock:
            count = sum(self.state.indexes[n]["count"] for n in self.state.matching(parts[0]))
        self.reply(200, {"count": count})

    def bulk(self, parts: list[str], data: bytes) -> None:
        """Count the actions per target index from the header lines alone (no JSON parsing)."""
        first = HEADER_INDEX.match(data)
        stored = first is not None and first.group(1).decode() in self.state.document_indexes
        if stored or data.startswith(b'{"delete"'):
            return self.bulk_documents(data)
        counts = count_actions(data)
        total = counts.total()
        unnamed = counts.pop(None, 0)
        if unnamed and len(parts) == 2:  # POST /<index>/_bulk
            counts[parts[0]] += unnamed
        with self.state.lock:
            for index, count in counts.items():
                self.state.indexes.setdefault(index, {"mappings": {}, "count": 0})["count"] += count
        body = b",".join([ITEM] * total)
        self.reply(200, raw=b'{"took":0,"errors":false,"items":[' + body + b"]}")

    # -- single documents: just enough for the tool's lock and range documents
    #    (create, get, compare-and-swap, exists, mget, bulk writes and deletes)

    def bulk_documents(self, data: bytes) -> None:
        """A bulk request to the lock index (a build's range documents): stored, not just counted."""
        st, lines, items = self.state, data.splitlines(), []
        with st.lock:
            while lines:
                ((kind, meta),) = json.loads(lines.pop(0)).items()
                key = (meta["_index"], meta["_id"])
                if kind == "delete":
                    found = st.docs.pop(key, None) is not None
                    items.append({kind: {"status": 200 if found else 404, "result": "deleted"}})
                    continue
                st.seq_no += 1
                st.docs[key] = (st.seq_no, json.loads(lines.pop(0)))
                items.append({kind: {"status": 201, "result": "created", **self.version(st.seq_no)}})
        self.reply(200, {"took": 0, "errors": False, "items": items})

    def mget(self, parts: list[str], data: bytes) -> None:
        st, found = self.state, []
        for doc_id in json.loads(data or b"{}").get("ids", []):
            doc = st.docs.get((parts[0], doc_id))
            answer: dict[str, Any] = {"_index": parts[0], "_id": doc_id, "found": doc is not None}
            if doc is not None:
                answer.update(self.version(doc[0]), _source=doc[1])
            found.append(answer)
        self.reply(200, {"docs": found})

    def get_doc(self, index: str, doc_id: str) -> None:
        found = self.state.docs.get((index, doc_id))
        if found is None:
            return self.reply(404, {"_index": index, "_id": doc_id, "found": False})
        seq_no, source = found
        self.reply(200, {"_index": index, "_id": doc_id, "found": True, **self.version(seq_no), "_source": source})

    def put_doc(self, index: str, doc_id: str, data: bytes, create: bool) -> None:
        st = self.state
        with st.lock:
            current = st.docs.get((index, doc_id))
            if (create and current is not None) or not self.version_matches(current):
                return self.reply(409, {"error": {"type": "version_conflict_engine_exception"}, "status": 409})
            st.seq_no += 1
            st.docs[(index, doc_id)] = (st.seq_no, json.loads(data))
            st.document_indexes.add(index)
            seq_no = st.seq_no
        self.reply(201, {"_index": index, "_id": doc_id, "result": "created", **self.version(seq_no)})

    def version_matches(self, current: tuple[int, Any] | None) -> bool:
        wanted = re.search(r"if_seq_no=(\d+)", self.path)
        return wanted is None or (current is not None and current[0] == int(wanted.group(1)))

    @staticmethod
    def version(seq_no: int) -> dict[str, int]:
        return {"_seq_no": seq_no, "_primary_term": 1, "_version": seq_no}

    def do_DELETE(self) -> None:
        parts, st = self.parts(), self.state
        self.body()
        if len(parts) == 3 and parts[1] == "_doc":
            with st.lock:
                current = st.docs.get((parts[0], parts[2]))
                if current is None or not self.version_matches(current):
                    return self.reply(409 if current else 404, {"status": 409 if current else 404})
                del st.docs[(parts[0], parts[2])]
            return self.reply(200, {"result": "deleted"})
        with st.lock:
            for name in st.matching(parts[0]) if parts else []:
                st.indexes.pop(name, None)
                for targets in st.aliases.values():
                    targets.discard(name)
        self.reply(200, {"acknowledged": True})


def serve(port: int = 0, handler: type[Handler] = Handler, state: State | None = None) -> ThreadingHTTPServer:
    """Start the sink (or ``handler`` with ``state``) on a background thread; ``server.server_address`` says where."""
    bound = type(f"Sink{handler.__name__}", (handler,), {"state": state or State()})
    server = ThreadingHTTPServer(("127.0.0.1", port), bound)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def main(start: Callable[[int], ThreadingHTTPServer] = serve) -> None:
    """Print the URL of the server ``start`` starts, then serve until killed or stdin closes."""
    server = start(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
    print(f"http://127.0.0.1:{server.server_address[1]}", flush=True)
    try:
        while sys.stdin.read(1):
            pass
    except KeyboardInterrupt:
        pass
    server.shutdown()


if __name__ == "__main__":
    main()
