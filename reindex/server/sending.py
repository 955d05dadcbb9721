"""Sending each batch as one pre-built bulk body, from a background thread.

Reading rows and building documents is Python work that holds the GIL; waiting for
the server is not. ``BulkSender`` sends on a thread fed batch by batch, so the next
batch is built while the server indexes this one (in each worker process too). A
batch's actions are joined into one NDJSON body (split only where it would pass
``max_chunk_bytes``) and sent with one ``client.bulk()`` call::

    with BulkSender(client, BulkOptions(max_chunk_bytes=5 << 20)) as sender:
        for batch in batches:
            sender.send(batch)
            indexed, others = sender.take()
    indexed, others = sender.take()

What ``helpers.streaming_bulk`` gave is kept: every item's result (``take()``), the
failed ones with their ids and reasons, items rejected with 429 (or another status
of ``retry_on_status``) sent again alone with exponential backoff up to
``max_retries`` times, and requests bounded in bytes. The helper itself is not
called: it handles every action on its own (expanding, serialising, sizing,
chunking) and every result through a generator: sending pre-serialised documents
through it cost 0.10 CPU s per 10,000 documents, against 0.02 as one body per batch
(benchmarks/RESULTS.md).
Whole requests answered 429/502/503/504 are retried by the client's transport
(``reindex.server.retries``). Every other bulk request of the tool (range records, the
queue's writes) goes through ``bulk_items`` too, so a rejected item is retried the
same way wherever it was sent (``send_all`` for the tool's own records).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from reindex import interrupts
from reindex.definitions.documents import Action, action_lines, created_a_document, item_failure
from reindex.errors import RunFailed
from reindex.server.retries import RETRY_ON_STATUS, backoff

#: Batches waiting for the sender thread; more only holds more memory.
QUEUE_DEPTH = 2

#: Sends one request body (given with its action lines); returns their bulk items.
Request = Callable[[bytes, list[bytes]], list[dict[str, Any]]]

#: ``(ok, item)``: a bulk result other than a document created (rejected, replaced, a delete).
Result = tuple[bool, dict[str, Any]]


@dataclass(frozen=True)
class BulkOptions:
    """How batches are sent: bytes per request at most, and retries of items rejected one by one."""

    max_chunk_bytes: int = 10 * 1024 * 1024
    max_retries: int = 8
    initial_backoff: float = 0.5
    max_backoff: float = 10.0
    retry_on_status: tuple[int, ...] = RETRY_ON_STATUS

    @classmethod
    def from_config(cls, config: Any) -> BulkOptions:
        return cls(
            max_chunk_bytes=config.max_chunk_bytes,
            max_retries=config.max_retries,
            initial_backoff=config.retry_backoff,
            max_backoff=config.retry_backoff_max,
        )


class BulkSender:
    """A thread that sends the batches given to ``send()``; ``take()`` says how they fared."""

    def __init__(self, client: Any, options: BulkOptions | None = None) -> None:
        self._client, self._options = client, options or BulkOptions()
        self._batches: queue.Queue[Sequence[Action] | None] = queue.Queue(maxsize=QUEUE_DEPTH)
        self._lock = threading.Lock()
        self._indexed = 0
        self._others: list[Result] = []
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

    def take(self) -> tuple[int, list[Result]]:
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

    def _run(self) -> None:
        # On failure the thread just ends: send() and _put_end() wait on the queue with
        # timeouts and give up once the error is set or the thread is gone. (Waiting here
        # for the end marker hung when the last request failed after taking it.)
        try:
            while (batch := self._batches.get()) is not None:
                if not self._stopping and batch:
                    indexed, others = send_batch(self._client, batch, self._options)
                    with self._lock:
                        self._indexed += indexed
                        self._others += others
        except BaseException as exc:
            self._error = exc


def send_batch(client: Any, batch: Sequence[Action], options: BulkOptions) -> tuple[int, list[Result]]:
    """Send one batch of actions; documents created, and every other result.

    Items rejected with a status of ``options.retry_on_status`` are sent again (alone),
    after ``initial_backoff * 2**(n-1)`` seconds, up to ``max_retries`` times; those
    still rejected then are reported as failed.
    """
    indexed, others = 0, []
    for item in bulk_items(client, [action_lines(action) for action in batch], options):
        if created_a_document(item):
            indexed += 1
        else:
            others.append((200 <= item_status(item) < 300, item))
    return indexed, others


def send_all(client: Any, actions: Sequence[Action], options: BulkOptions) -> None:
    """Send ``actions`` (records of the tool's own, not documents), rejected items retried as
    ``send_batch`` does; raise RunFailed with the server's reason if one still fails."""
    for item in bulk_items(client, [action_lines(action) for action in actions], options):
        op, status = next(iter(item)), item_status(item)
        if not (200 <= status < 300 or (op == "delete" and status == 404)):
            failure = item_failure(item)
            raise RunFailed(f"the search server rejected {op} {failure.id}: {failure.reason}")


def bulk_items(
    client: Any, lines: list[bytes], options: BulkOptions, request: Request | None = None
) -> list[dict[str, Any]]:
    """The last item of each action of ``lines``, in order: items rejected with a status of
    ``options.retry_on_status`` sent again (alone) with backoff, up to ``max_retries`` times.

    ``request`` sends one body (and its lines) and returns their items; by default one ``client.bulk()``.
    """
    send = request or (lambda body, sent: client.bulk(body=body)["items"])
    items: list[dict[str, Any]] = [{}] * len(lines)
    todo = list(range(len(lines)))
    for attempt in range(options.max_retries + 1):
        if attempt:
            interrupts.sleep(backoff(attempt, options.initial_backoff, options.max_backoff))
        retry: list[int] = []
        for body, sent in bodies([lines[i] for i in todo], options.max_chunk_bytes, todo):
            for position, item in zip(sent, send(body, [lines[i] for i in sent]), strict=True):
                items[position] = item
                if item_status(item) in options.retry_on_status and attempt < options.max_retries:
                    retry.append(position)
        if not retry:
            break
        todo = retry
    return items


def item_status(item: dict[str, Any]) -> int:
    """The status of one bulk item (500 when it has none)."""
    return int(next(iter(item.values())).get("status", 500))


def bodies(lines: list[bytes], max_bytes: int, keys: Sequence[Any] | None = None) -> Iterator[tuple[bytes, list[Any]]]:
    """Request bodies of whole actions, each at most ``max_bytes`` (an action bigger than that goes alone),
    with the lines of each (or, given ``keys``, the key of each line)."""
    keys = lines if keys is None else keys
    start, size = 0, 0
    for end, line in enumerate(lines):
        if size and size + len(line) > max_bytes:
            yield b"".join(lines[start:end]), list(keys[start:end])
            start, size = end, 0
        size += len(line)
    if start < len(lines):
        yield b"".join(lines[start:]), list(keys[start:])
