"""A small HTTP proxy on loopback in front of the search server, that records and can answer for it.

    with HttpProxy(upstream_url) as proxy:
        proxy.answer_with(500, unless=lambda method, path: path == "/")  # every request but GET / fails
        ...
        proxy.requests  # [(method, path, body bytes), ...] as the client sent them

    with OpenSearchProxy(upstream_url, version="2.11.0") as proxy:
        ...  # the test server, answering as OpenSearch does

Unlike ``FaultProxy`` (a TCP proxy that cuts or refuses connections for a while), this
one understands requests, so a test can fail some and let others through, count what
reached the server, or change its answers.
"""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote, urlsplit

#: Headers about one hop's connection or encoding, which the proxy sets itself.
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}

Matcher = Callable[[str, str], bool]


class HttpProxy:
    """Forward 127.0.0.1:<port> to ``upstream``, recording each request."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.requests: list[tuple[str, str, bytes]] = []
        self._rule: tuple[int, Matcher] | None = None
        #: The reason the proxy's own error answers give ("" for the default).
        self.reason = ""
        self._lock = threading.Lock()
        handler = type("Handler", (_Forward,), {"proxy": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> HttpProxy:
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    def answer_with(self, status: int, unless: Matcher = lambda method, path: False, reason: str = "") -> None:
        """From now on answer every request ``status`` with an error body giving ``reason``, but those
        ``unless`` lets through."""
        self._rule = (status, unless)
        self.reason = reason

    def record(self, method: str, path: str, body: bytes) -> int | None:
        """Note a request; return the status to answer in the server's stead, if any."""
        with self._lock:
            self.requests.append((method, path, body))
        if self._rule is not None:
            status, unless = self._rule
            if not unless(method, urlsplit(path).path):
                return status
        return None

    def request_body(self, method: str, path: str, body: bytes) -> bytes | None:
        """The body to pass on to the server for a request (as it is, here); None: answer an empty bulk."""
        return body

    def request_path(self, method: str, path: str) -> str:
        """The path (with its query string) to pass the request on to (as it is, here)."""
        return path

    def answer(
        self, method: str, path: str, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[list[tuple[str, str]], bytes]:
        """The headers and body to pass back for an answer of the server (as they are, here)."""
        return headers, body

    def bulk_sizes(self) -> list[int]:
        """The number of actions in each ``_bulk`` request that reached the proxy."""
        return [_actions(body) for method, path, body in self.requests if urlsplit(path).path.endswith("/_bulk")]


class OpenSearchProxy(HttpProxy):
    """The test server as OpenSearch answers: no ``X-Elastic-Product`` header, OpenSearch's ``GET /``.

    Real OpenSearch (1.x to 3.x, and AWS's service) never sends ``X-Elastic-Product:
    Elasticsearch``, which osmem-server does; the official client refuses a server
    without it.
    """

    def __init__(self, upstream: str, version: str = "2.11.0") -> None:
        super().__init__(upstream)
        self.version = version
        self.stripped = 0  # answers that had the product header, taken off

    def answer(
        self, method: str, path: str, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[list[tuple[str, str]], bytes]:
        kept = [(name, value) for name, value in headers if name.lower() != "x-elastic-product"]
        if len(kept) < len(headers):
            with self._lock:
                self.stripped += 1
        if method == "GET" and path == "/" and status == 200:
            info = json.loads(body)
            version = {k: v for k, v in info.get("version", {}).items() if k != "build_flavor"}
            info["version"] = {**version, "distribution": "opensearch", "number": self.version}
            info["tagline"] = "The OpenSearch Project: https://opensearch.org/"
            body = json.dumps(info).encode()
        return kept, body


class ElasticsearchProxy(HttpProxy):
    """The test server as Elasticsearch 8 answers, for what differs from OpenSearch in searching.

    ``GET /`` names no distribution; a point in time is opened at ``POST /<index>/_pit``
    (answered ``{"id": ...}``) and closed at ``DELETE /_pit``, translated to OpenSearch's
    ``/_search/point_in_time``; a sort on ``_shard_doc`` (Elasticsearch's tie-breaker in a
    point in time) is sent on as a sort on ``_id``. Not a real Elasticsearch: docs/search.md
    says what was not tried against one.
    """

    def __init__(self, upstream: str, version: str = "8.15.0") -> None:
        super().__init__(upstream)
        self.version = version

    def request_path(self, method: str, path: str) -> str:
        route, _, query = path.partition("?")
        if route.endswith("/_pit"):
            route = route[: -len("/_pit")] + "/_search/point_in_time"
        return f"{route}?{query}" if query else route

    def request_body(self, method: str, path: str, body: bytes) -> bytes | None:
        route = urlsplit(path).path
        if method == "DELETE" and route == "/_pit":
            return json.dumps({"pit_id": [json.loads(body)["id"]]}).encode()
        if route.endswith("/_search") and body:
            return body.replace(b'"_shard_doc"', b'"_id"')
        return body

    def answer(
        self, method: str, path: str, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[list[tuple[str, str]], bytes]:
        if method == "GET" and path == "/" and status == 200:
            info = json.loads(body)
            info["version"] = {"number": self.version, "build_flavor": "default", "lucene_version": "9.11.1"}
            info["tagline"] = "You Know, for Search"
            return headers, json.dumps(info).encode()
        if path.endswith("/_pit") and method == "POST" and status == 200:
            return headers, json.dumps({"id": json.loads(body)["pit_id"]}).encode()
        if path == "/_pit" and method == "DELETE" and status == 200:
            return headers, json.dumps({"succeeded": True, "num_freed": 1}).encode()
        return headers, body


class RejectingProxy(HttpProxy):
    """The test server, but bulk items with these ids are rejected with 429, as a busy node rejects them.

    ``times``: how many times each id is rejected before it is let through. A rejected
    action never reaches the server; its item in the answer says 429.
    """

    def __init__(self, upstream: str, ids: set[str], times: int = 1) -> None:
        super().__init__(upstream)
        self.left = dict.fromkeys(ids, times)
        self.rejected: list[str] = []
        self._held = threading.local()

    def request_body(self, method: str, path: str, body: bytes) -> bytes | None:
        if not urlsplit(path).path.endswith("/_bulk"):
            return body
        lines = [line for line in body.split(b"\n") if line]
        kept, positions = [], []
        position = 0
        while lines:
            header = json.loads(lines.pop(0))
            op = next(iter(header))
            pair = [json.dumps(header).encode()] + ([lines.pop(0)] if op != "delete" else [])
            doc_id = header[op].get("_id")
            reject = self.rejects(doc_id)
            if reject:
                positions.append((position, op, header[op]))
            else:
                kept += pair
            position += 1
        self._held.positions = positions
        return b"".join(line + b"\n" for line in kept) if kept else None

    def rejects(self, doc_id: str) -> bool:
        """True when this action is to be rejected (and noted as rejected)."""
        with self._lock:
            reject = self.left.get(doc_id, 0) > 0
            if reject:
                self.left[doc_id] -= 1
                self.rejected.append(doc_id)
        return reject

    def answer(
        self, method: str, path: str, status: int, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[list[tuple[str, str]], bytes]:
        positions = getattr(self._held, "positions", [])
        self._held.positions = []
        if not positions or status != 200:
            return headers, body
        answer = json.loads(body)
        for position, op, meta in positions:
            error = {"type": "es_rejected_execution_exception", "reason": "rejected execution (queue full)"}
            item = {op: {"_index": meta.get("_index"), "_id": meta.get("_id"), "status": 429, "error": error}}
            answer["items"].insert(position, item)
        answer["errors"] = True
        return headers, json.dumps(answer).encode()


class BusyProxy(RejectingProxy):
    """The test server, but the first request ``kind`` picks out is answered 429, as a busy node answers:
    every item of a bulk request rejected, any other request as a whole. Then everything goes through.

    ``kind(method, path, body)``: the path without its query string, ids in it unquoted.
    ``busy`` holds what was answered 429: ``(method, path)``, or None while nothing was.
    """

    def __init__(self, upstream: str, kind: Callable[[str, str, bytes], bool]) -> None:
        super().__init__(upstream, ids=set())
        self.kind = kind
        self.busy: tuple[str, str] | None = None

    def record(self, method: str, path: str, body: bytes) -> int | None:
        injected = super().record(method, path, body)
        plain = unquote(urlsplit(path).path)
        with self._lock:
            first = injected is None and self.busy is None and self.kind(method, plain, body)
            if first:
                self.busy = (method, plain)
        self._held.all_items = first and plain.endswith("/_bulk")
        return 429 if first and not self._held.all_items else injected

    def rejects(self, doc_id: str) -> bool:
        if getattr(self._held, "all_items", False):
            with self._lock:
                self.rejected.append(doc_id)
            return True
        return False


def bulk_index(body: bytes) -> str:
    """The index the first action of a bulk body writes to."""
    header = json.loads(body.split(b"\n", 1)[0])
    return str(next(iter(header.values())).get("_index", ""))


class SizeLimitProxy(HttpProxy):
    """The test server with a request size limit, as ``http.max_content_length`` gives a real one: 413 above it."""

    def __init__(self, upstream: str, max_bytes: int) -> None:
        super().__init__(upstream)
        self.max_bytes = max_bytes
        self.refused = 0

    def record(self, method: str, path: str, body: bytes) -> int | None:
        injected = super().record(method, path, body)
        if injected is None and len(body) > self.max_bytes:
            with self._lock:
                self.refused += 1
            return 413
        return injected


def _actions(body: bytes) -> int:
    lines = [line for line in body.split(b"\n") if line.strip()]
    return sum(1 for line in lines if next(iter(json.loads(line)), None) in ("index", "create", "delete", "update"))


class _Forward(BaseHTTPRequestHandler):
    """Pass one request on to the upstream server and its answer back, unless the proxy answers it."""

    proxy: HttpProxy
    protocol_version = "HTTP/1.1"  # keep the client's connections open, as a server does
    # The answer's headers and body go out in two writes: with Nagle's algorithm on, the body
    # waited for the client's delayed ACK, 40 ms a request (2 s of a rebuild's 54 requests).
    disable_nagle_algorithm = True

    def forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        injected = self.proxy.record(self.command, self.path, body)
        passed = self.proxy.request_body(self.command, self.path, body)
        if injected is not None:
            error = {"type": "injected_fault", "reason": self.proxy.reason or f"the test proxy answered {injected}"}
            self.reply(injected, [("Content-Type", "application/json")], json.dumps({"error": error}).encode())
            return
        if passed is None:  # nothing left for the server: the proxy answers the bulk request itself
            empty = [("Content-Type", "application/json")], b'{"took":0,"errors":false,"items":[]}'
            self.reply(200, *self.proxy.answer(self.command, urlsplit(self.path).path, 200, *empty))
            return
        body = passed
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
        upstream = http.client.HTTPConnection(*self.proxy.upstream, timeout=120)
        try:
            path = self.proxy.request_path(self.command, self.path)
            upstream.request(self.command, path, body=body or None, headers=headers)
            response = upstream.getresponse()
            headers, data = self.proxy.answer(
                self.command, urlsplit(self.path).path, response.status, response.getheaders(), response.read()
            )
            self.reply(response.status, headers, data)
        finally:
            upstream.close()

    def reply(self, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
        self.send_response(status)
        for name, value in headers:
            if name.lower() not in HOP_HEADERS:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return None
