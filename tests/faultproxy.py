"""A small TCP proxy on loopback that passes traffic to the search server, or fails it on cue.

    with FaultProxy(upstream_url) as proxy:
        proxy.fail("refuse", seconds=3)   # drop every connection for 3 seconds
        proxy.fail("429", seconds=3)      # answer every request 429 for 3 seconds
        proxy.fail("freeze", seconds=3)   # read every request and answer nothing for 3 seconds

Faults end by themselves; connections open when a fault starts are cut at their next
request, as a restarting server would cut them.
"""

from __future__ import annotations

import socket
import struct
import threading
import time
from contextlib import suppress
from typing import Any
from urllib.parse import urlsplit

STATUS_TEXT = {429: "Too Many Requests", 502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}


class FaultProxy:
    """Forward 127.0.0.1:<port> to ``upstream``; ``fail()`` injects a fault for a while."""

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._fault: str | None = None
        self._until = 0.0
        self._closed = threading.Event()
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self.faults_served = 0

    def __enter__(self) -> FaultProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._closed.set()
        self._listener.close()
        with self._lock:
            for sock in list(self._sockets):
                _abort(sock)

    def fail(self, kind: str, seconds: float) -> None:
        """From now on, for ``seconds``: ``"refuse"`` drops connections, ``"429"``/``"503"`` answer that,
        ``"freeze"`` reads requests and answers nothing until the fault ends (then cuts the connection)."""
        self._fault, self._until = kind, time.monotonic() + seconds

    def fault(self) -> str | None:
        return self._fault if time.monotonic() < self._until else None

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except (TimeoutError, OSError):
                continue
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.add(sock)

    def _serve(self, client: socket.socket) -> None:
        self._track(client)
        fault = self.fault()
        if fault is not None:
            return self._inject(client, fault)
        try:
            server = socket.create_connection(self.upstream, timeout=10)
        except OSError:
            return _abort(client)
        self._track(server)
        threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()
        self._pump(client, server, True)

    def _pump(self, source: socket.socket, sink: socket.socket, from_client: bool) -> None:
        try:
            while not self._closed.is_set():
                data = source.recv(65536)
                if not data:
                    break
                if from_client and self.fault() is not None:
                    break  # a fault began: cut this connection at its next request
                sink.sendall(data)
        except OSError:
            pass
        _abort(source)
        _abort(sink)

    def _inject(self, client: socket.socket, fault: str) -> None:
        self.faults_served += 1
        if fault == "refuse":
            return _abort(client)
        if fault == "freeze":
            with suppress(OSError):
                _read_request(client)
            while self.fault() == "freeze" and not self._closed.is_set():
                time.sleep(0.05)
            return _abort(client)
        status = int(fault)
        try:
            _read_request(client)
            body = b'{"error":{"type":"injected_fault","reason":"fault proxy"},"status":%d}' % status
            head = (
                f"HTTP/1.1 {status} {STATUS_TEXT.get(status, 'Error')}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
            )
            client.sendall(head.encode() + body)
            client.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        client.close()


def _read_request(sock: socket.socket) -> None:
    sock.settimeout(5)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            return
        body += chunk


def _abort(sock: socket.socket) -> None:
    """Close with a reset, as a dying server does."""
    with suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    with suppress(OSError):
        sock.close()
