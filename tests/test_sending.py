"""Bulk requests sent from a background thread: results come back, and failures do not hang the run."""

from __future__ import annotations

import threading

import pytest
from elastic_transport import ConnectionError as TransportConnectionError

from reindex.config import Config
from reindex.connection import Connection
from reindex.documents import dumps
from reindex.sending import BulkSender


def actions(index: str, ids: range) -> list[tuple[dict, bytes]]:
    return [({"index": {"_index": index, "_id": str(i)}}, dumps({"n": i})) for i in ids]


def test_every_batch_sent_is_accounted_for(es):
    es.indices.create(index="tiny-1", mappings={"properties": {"n": {"type": "integer"}}})
    indexed, rejected = 0, []

    with BulkSender(es, {"chunk_size": 7}) as sender:
        for start in range(0, 50, 10):
            sender.send(actions("tiny-1", range(start, start + 10)))
            done, bad = sender.take()
            indexed, rejected = indexed + done, rejected + bad
        sender.send([({"index": {"_index": "tiny-1", "_id": "x"}}, dumps({"n": "not a number"}))])
    done, bad = sender.take()

    assert (indexed + done, len(rejected + bad)) == (50, 1)
    es.indices.refresh(index="tiny-1")
    assert es.count(index="tiny-1")["count"] == 50


def test_a_server_that_cannot_be_reached_raises_instead_of_hanging():
    client = Connection(Config(hosts=("http://127.0.0.1:1",))).client().options(max_retries=0)

    with pytest.raises(TransportConnectionError), BulkSender(client, {"chunk_size": 5}) as sender:
        for start in range(0, 1000, 5):  # more batches than the queue holds
            sender.send(actions("tiny-1", range(start, start + 5)))


def test_an_error_in_the_caller_stops_the_thread():
    client = Connection(Config(hosts=("http://127.0.0.1:1",))).client()

    with pytest.raises(KeyError), BulkSender(client, {"chunk_size": 5}):
        raise KeyError("building failed")

    assert "reindex-bulk" not in [thread.name for thread in threading.enumerate()]


def test_a_last_request_that_fails_after_the_end_raises_instead_of_hanging():
    """One batch smaller than a request: it goes out only once the end is known, and then fails."""
    client = Connection(Config(hosts=("http://127.0.0.1:1",))).client().options(max_retries=0)
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            with BulkSender(client, {"chunk_size": 100}) as sender:
                sender.send(actions("tiny-1", range(3)))
            outcome.append(None)
        except BaseException as exc:
            outcome.append(exc)

    caller = threading.Thread(target=run, daemon=True)
    caller.start()
    caller.join(timeout=20)

    assert not caller.is_alive(), "the run hung after its last request failed"
    [error] = outcome
    assert isinstance(error, TransportConnectionError)
