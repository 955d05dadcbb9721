"""A small HTTP proxy on loopback that makes the test server look like OpenSearch to a client.

    with OpenSearchProxy(upstream_url, version="2.11.0") as proxy:
        client = Elasticsearch(proxy.url)

Real OpenSearch (1.x to 3.x, and AWS's service) never sends ``X-Elastic-Product:
Elasticsearch``, which osmem-server does; the proxy takes that header off every
response, and answers ``GET /`` as OpenSearch does (``version.distribution``
``opensearch``, the given ``version.number``, OpenSearch's tagline). Everything else
passes through unchanged.
"""

from __future__ import annotations

import http.client
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

PRODUCT_HEADER = "x-elastic-product"
#: Headers about one hop's connection or encoding, which the proxy sets itself.
HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "accept-encoding", "host"}


class OpenSearchProxy:
    """Forward 127.0.0.1:<port> to ``upstream``, without the product header, as OpenSearch ``version``."""

    def __init__(self, upstream: str, version: str = "2.11.0") -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.version = version
        self.stripped = 0  # responses that had the product header, taken off
        self._lock = threading.Lock()
        handler = type("Handler", (_Forward,), {"proxy": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> OpenSearchProxy:
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._server.shutdown()
        self._server.server_close()

    def root(self, body: bytes) -> bytes:
        """The answer to ``GET /`` as an OpenSearch server of ``self.version`` gives it."""
        info = json.loads(body)
        version = {k: v for k, v in info.get("version", {}).items() if k != "build_flavor"}
        info["version"] = {**version, "distribution": "opensearch", "number": self.version}
        info["tagline"] = "The OpenSearch Project: https://opensearch.org/"
        return json.dumps(info).encode()

    def count_stripped(self) -> None:
        with self._lock:
            self.stripped += 1


class _Forward(BaseHTTPRequestHandler):
    """Pass one request on to the upstream server and its answer back, as OpenSearch would give it."""

    proxy: OpenSearchProxy
    protocol_version = "HTTP/1.1"  # keep the client's connections open, as a server does

    def forward(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP_HEADERS}
        upstream = http.client.HTTPConnection(*self.proxy.upstream, timeout=120)
        try:
            upstream.request(self.command, self.path, body=body, headers=headers)
            response = upstream.getresponse()
            data = response.read()
            answer_headers = response.getheaders()
        finally:
            upstream.close()
        if self.command == "GET" and urlsplit(self.path).path == "/" and response.status == 200:
            data = self.proxy.root(data)
        self.send_response_only(response.status, response.reason)
        for name, value in answer_headers:
            if name.lower() == PRODUCT_HEADER:
                self.proxy.count_stripped()
            elif name.lower() not in HOP_HEADERS:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = forward

    def log_message(self, format: str, *args: Any) -> None:  # quiet: the tests print what matters
        return
