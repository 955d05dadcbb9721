"""Sending bulk requests from a background thread while the caller builds the next documents.

Reading rows and building documents is Python work that holds the GIL; waiting for
the server is not. ``BulkSender`` runs the client's ``streaming_bulk`` on a thread
fed batch by batch, so the next batch is built while the server indexes this one
(in each worker process too). Rows are still read on the caller's thread, on its
database connection::

    with BulkSender(client, {"chunk_size": 2000, "max_chunk_bytes": 5 << 20}) as sender:
        for batch in batches:
            sender.send(batch)
            indexed, others = sender.take()
    indexed, others = sender.take()
"""

from __future__ import annotations

import functools
import inspect
import queue
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from reindex.documents import Action, created_a_document, keep_action

#: Batches waiting for the sender thread; more only holds more memory.
QUEUE_DEPTH = 2


class BulkSender:
    """A thread that sends the batches given to ``send()``; ``take()`` says how they fared."""

    def __init__(self, client: Any, bulk_options: dict[str, Any]) -> None:
        self._client, self._bulk_options = client, bulk_options
        self._batches: queue.Queue[Sequence[Action] | None] = queue.Queue(maxsize=QUEUE_DEPTH)
        self._lock = threading.Lock()
        self._indexed = 0
        self._others: list[tuple[bool, dict[str, Any]]] = []
        self._error: BaseException | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="reindex-bulk", daemon=True)
        self._thread.start()

    def send(self, batch: Sequence[Action]) -> None:
        """Queue one batch of actions; waits while the thread is ``QUEUE_DEPTH`` batches behind."""
        while True:
            self._raise_if_failed()
            try:
                self._batches.put(batch, timeout=0.1)
                return
            except queue.Full:
                continue

    def take(self) -> tuple[int, list[tuple[bool, dict[str, Any]]]]:
        """Since the last call: documents created, and ``(ok, item)`` of every other bulk result
        (rejected, a write that replaced a document, a delete)."""
        with self._lock:
            indexed, self._indexed = self._indexed, 0
            others, self._others = self._others, []
        return indexed, others

    def __enter__(self) -> BulkSender:
        return self

    def __exit__(self, exc_type: Any, *exc: Any) -> None:
        if exc_type is not None:
            self._stopping = True  # the thread drops what is queued and ends
        self._put_end()
        self._thread.join()
        if exc_type is None:
            self._raise_if_failed()

    def _put_end(self) -> None:
        while self._thread.is_alive():
            try:
                self._batches.put(None, timeout=0.1)
                return
            except queue.Full:
                continue

    def _raise_if_failed(self) -> None:
        if self._error is not None:
            raise self._error

    def _actions(self) -> Iterator[Action]:
        while (batch := self._batches.get()) is not None:
            if not self._stopping:
                yield from batch

    def _send_all(self, actions: Iterator[Action]) -> None:
        from elasticsearch.helpers import streaming_bulk

        for ok, item in streaming_bulk(
            self._client,
            actions,  # type: ignore[arg-type]
            expand_action_callback=keep_action,  # type: ignore[arg-type]
            raise_on_error=False,
            raise_on_exception=True,
            **helper_options(self._bulk_options),
        ):
            with self._lock:
                if ok and created_a_document(item):
                    self._indexed += 1
                else:
                    self._others.append((ok, item))

    def _run(self) -> None:
        # On failure the thread just ends: send() and _put_end() wait on the queue with
        # timeouts and give up once the error is set or the thread is gone. (Waiting here
        # for the end marker hung when the last request failed after taking it.)
        try:
            self._send_all(self._actions())
        except BaseException as exc:
            self._error = exc


@functools.cache
def _helper_parameters() -> frozenset[str]:
    from elasticsearch.helpers import streaming_bulk

    return frozenset(inspect.signature(streaming_bulk).parameters)


def helper_options(options: dict[str, Any]) -> dict[str, Any]:
    """``options`` without ``retry_on_status`` when the installed ``streaming_bulk`` does not take it.

    It came in elasticsearch 8.16; older helpers pass it on to ``bulk()``, which fails,
    and retry rejected documents on 429 only (whole requests are retried by the transport).
    """
    if "retry_on_status" in options and "retry_on_status" not in _helper_parameters():
        return {k: v for k, v in options.items() if k != "retry_on_status"}
    return options
