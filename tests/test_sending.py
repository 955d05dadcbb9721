"""Bulk requests sent from a background thread, one body per batch: every result comes back, items
rejected with 429 are sent again alone, bodies stay within the byte limit, failures do not hang the run."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from elastic_transport import ConnectionError as TransportConnectionError

from reindex.config import Config
from reindex.definitions.documents import delete_actions, dumps, item_failure
from reindex.server.connection import Connection
from reindex.server.sending import BulkOptions, BulkSender
from tests.httpproxy import HttpProxy, RejectingProxy

FAST = BulkOptions(initial_backoff=0.01)


def actions(index: str, ids: range) -> list[tuple[dict, bytes]]:
    return [({"index": {"_index": index, "_id": str(i)}}, dumps({"n": i})) for i in ids]


def test_every_batch_sent_is_accounted_for(es):
    es.indices.create(index="tiny-1", mappings={"properties": {"n": {"type": "integer"}}})
    indexed, rejected = 0, []

    with BulkSender(es) as sender:
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

    with pytest.raises(TransportConnectionError), BulkSender(client) as sender:
        for start in range(0, 1000, 5):  # more batches than the queue holds
            sender.send(actions("tiny-1", range(start, start + 5)))


def test_an_error_in_the_caller_stops_the_thread():
    client = Connection(Config(hosts=("http://127.0.0.1:1",))).client()

    with pytest.raises(KeyError), BulkSender(client):
        raise KeyError("building failed")

    assert "reindex-bulk" not in [thread.name for thread in threading.enumerate()]


def test_a_last_request_that_fails_after_the_end_raises_instead_of_hanging():
    """One batch smaller than a request: it goes out only once the end is known, and then fails."""
    client = Connection(Config(hosts=("http://127.0.0.1:1",))).client().options(max_retries=0)
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            with BulkSender(client) as sender:
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


def send_all(client: Any, batches: list[list[tuple[dict, bytes | None]]], options: BulkOptions) -> tuple[int, list]:
    indexed, others = 0, []
    with BulkSender(client, options) as sender:
        for batch in batches:
            sender.send(batch)
    done, more = sender.take()
    return indexed + done, others + more


def test_each_batch_goes_out_as_one_bulk_request(es, es_url):
    es.indices.create(index="tiny-1")

    with HttpProxy(es_url) as proxy:
        client = Connection(Config(hosts=(proxy.url,))).client()
        indexed, others = send_all(client, [actions("tiny-1", range(0, 40)), actions("tiny-1", range(40, 55))], FAST)

    assert (indexed, others) == (55, [])
    assert proxy.bulk_sizes() == [40, 15]


def test_a_batch_bigger_than_the_byte_limit_is_split_into_requests_within_it(es, es_url):
    es.indices.create(index="tiny-1")
    batch = [({"index": {"_index": "tiny-1", "_id": str(i)}}, dumps({"text": "x" * 100})) for i in range(20)]

    with HttpProxy(es_url) as proxy:
        client = Connection(Config(hosts=(proxy.url,))).client()
        indexed, others = send_all(client, [batch], BulkOptions(max_chunk_bytes=1000, initial_backoff=0.01))

    bodies = [body for method, path, body in proxy.requests if path.endswith("/_bulk")]
    assert (indexed, others) == (20, [])
    assert len(bodies) > 1 and all(len(body) <= 1000 for body in bodies)
    assert sum(proxy.bulk_sizes()) == 20
    es.indices.refresh(index="tiny-1")
    assert es.count(index="tiny-1")["count"] == 20


def test_only_the_items_rejected_with_429_are_sent_again(es, es_url):
    es.indices.create(index="tiny-1")

    with RejectingProxy(es_url, {"3", "7"}) as proxy:
        client = Connection(Config(hosts=(proxy.url,))).client()
        indexed, others = send_all(client, [actions("tiny-1", range(10))], FAST)

    assert (indexed, others) == (10, [])
    assert proxy.bulk_sizes() == [10, 2]  # the batch, then the two rejected alone
    assert sorted(proxy.rejected) == ["3", "7"]
    es.indices.refresh(index="tiny-1")
    assert es.count(index="tiny-1")["count"] == 10


def test_items_still_rejected_after_the_last_retry_fail_with_their_id_and_reason(es, es_url):
    es.indices.create(index="tiny-1")

    with RejectingProxy(es_url, {"4"}, times=100) as proxy:
        client = Connection(Config(hosts=(proxy.url,))).client()
        options = BulkOptions(max_retries=2, initial_backoff=0.01)
        indexed, others = send_all(client, [actions("tiny-1", range(6))], options)

    [(ok, item)] = others
    failure = item_failure(item)
    assert (indexed, ok, failure.id, failure.error_type) == (5, False, "4", "es_rejected_execution_exception")
    assert "rejected execution" in failure.reason
    assert proxy.bulk_sizes() == [6, 1, 1]  # the batch, then retries 1 and 2 of the rejected item


def test_deletes_report_each_result_and_a_document_already_gone_as_404(es):
    es.indices.create(index="tiny-1")
    send_all(es, [actions("tiny-1", range(3))], FAST)

    indexed, others = send_all(es, [list(delete_actions("tiny-1", ["0", "2", "9"]))], FAST)

    assert indexed == 0
    assert [(ok, item["delete"]["_id"], item["delete"]["status"]) for ok, item in others] == [
        (True, "0", 200),
        (True, "2", 200),
        (False, "9", 404),
    ]
    es.indices.refresh(index="tiny-1")
    assert es.count(index="tiny-1")["count"] == 1
