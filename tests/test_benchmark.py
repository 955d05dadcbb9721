"""The benchmark script keeps working: every contender indexes every row (no timing asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import ROOT


def test_the_benchmark_runs_every_contender_against_the_do_nothing_endpoint():
    done = subprocess.run(
        [
            sys.executable,
            "benchmarks/rebuild.py",
            "--rows",
            "300",
            "--repeat",
            "1",
            "--contenders",
            "reindex,reindex-light,reindex-orm,reindex-workers,raw,dbapi,dbapi-light,ceiling",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    by_name = {r["contender"]: r for r in report["results"]}
    assert sorted(by_name) == [
        "ceiling",
        "dbapi",
        "dbapi-light",
        "raw",
        "reindex",
        "reindex-light",
        "reindex-orm",
        "reindex-workers",
    ]
    assert all(r["docs"] == 300 for r in by_name.values()), by_name
    assert by_name["reindex"]["queries"] > 0


def test_the_do_nothing_endpoint_counts_actions_per_index_whatever_the_header_style():
    from benchmarks.sink import count_actions

    def body(*headers: bytes) -> bytes:
        return b"".join(h + b'\n{"text":"a line\\n{\\"index\\":{}}"}\n' for h in headers)

    compact = b'{"index":{"_index":"products-1","_id":"%d"}}'
    assert count_actions(body(*(compact % i for i in range(3)))) == {"products-1": 3}
    assert count_actions(body(compact % 1, b'{"create":{"_index":"other","_id":"2"}}')) == {"products-1": 1, "other": 1}
    assert count_actions(body(b'{"index":{"_id":"1","_index":"raw"}}', b'{"create":{"_index":"raw"}}')) == {"raw": 2}
    assert count_actions(body(b'{ "index" : { "_id" : "1" } }', compact % 2)) == {None: 1, "products-1": 1}


def test_the_store_finds_a_name_the_lag_benchmark_wrote_the_moment_its_bulk_was_answered():
    from benchmarks import store
    from benchmarks.lag import searchable
    from reindex.config import Config
    from reindex.server.connection import Connection

    server = store.serve()
    try:
        client = Connection(Config(hosts=(f"http://127.0.0.1:{server.server_address[1]}",))).client()
        client.indices.create(index="products-1")
        client.indices.update_aliases(actions=[{"add": {"index": "products-1", "alias": "products"}}])
        docs = [(1, "lag probe 7"), (2, "lag probe 70"), (3, 'a "quoted" name')]
        body = [line for pk, name in docs for line in ({"index": {"_index": "products-1", "_id": pk}}, {"name": name})]
        client.bulk(operations=body)

        assert searchable(client, "products", "lag probe 7")
        assert searchable(client, "products", 'a "quoted" name')
        assert not searchable(client, "products", "lag probe")
        client.bulk(operations=[{"delete": {"_index": "products-1", "_id": 1}}])
        assert not searchable(client, "products", "lag probe 7")
    finally:
        server.shutdown()


def test_the_scale_out_benchmark_runs_every_contender_through_a_real_celery_worker():
    import socket

    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=1).close()
    except OSError:
        if os.environ.get("REINDEX_REQUIRE_SERVICES"):
            raise
        pytest.skip("no Redis on 127.0.0.1:6379")
    command = [sys.executable, "benchmarks/scaleout.py", "--rows", "300", "--repeat", "1", "--pools", "2"]
    done = subprocess.run(
        [*command, "--small-ranges", "20", "--json"], capture_output=True, text=True, timeout=300, cwd=ROOT
    )

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [r["contender"] for r in report["results"]] == [
        "one process",
        "--workers 2",
        "celery, 2 processes",
        "celery, 2 processes, 20-row ranges",
    ]
    assert [(r["ranges"], r["docs"]) for r in report["results"]] == [(1, 300), (8, 300), (8, 300), (15, 300)]


def test_the_freshness_benchmark_runs_update_sweep_and_verify():
    def run(*args: str) -> list[dict]:
        command = [sys.executable, "benchmarks/freshness.py", *args, "--rows", "300", "--repeat", "1", "--json"]
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=ROOT)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)["figures"]

    [update] = run("update")
    [walk] = run("walk")

    assert update["changed"] == 300 and update["queries"] > 0  # a table smaller than the 1,000 changed rows
    assert walk["verify_agrees"] and walk["sweep_docs_per_s"] > 0


def test_the_derived_benchmark_document_is_the_heavy_one_plus_fields_built_in_prepare(catalog, es, es_url):
    """The server's strict mapping takes every derived field; the rest is the heavy document as it was."""
    import reindex
    from benchmarks.definitions import DerivedProductRowsIndex, ProductRowsIndex
    from reindex.definitions.documents import build_batches, iter_batches
    from tests.helpers import stored

    catalog(products=30)
    [result] = reindex.rebuild(DerivedProductRowsIndex(), es_url=es_url)

    heavy = ProductRowsIndex()
    assert result.indexed == heavy.get_queryset().count() > 0
    batches = iter_batches(heavy.get_queryset(), 50)
    for actions in build_batches(heavy, "bench", batches, lambda n: None, pytest.fail):
        for header, body in actions:
            plain = json.loads(body)
            document = stored(es, "products", header["index"]["_id"])
            assert document is not None and {k: document[k] for k in plain} == plain
            assert document["countries"] == sorted({s["country"] for s in plain["sellers"]})
            assert document["slug"].endswith(str(plain["sku"])) and document["prefixes"] and document["keywords"]


@pytest.mark.parametrize("light", [False, True], ids=["heavy", "light"])
def test_the_hand_written_script_builds_the_documents_reindex_builds(catalog, light):
    """The yardstick is fair only if it does the same work: the same documents, byte for byte."""
    from benchmarks.definitions import ProductLightIndex, ProductRowsIndex
    from benchmarks.handwritten import documents
    from reindex.definitions.documents import build_batches, iter_batches

    catalog(products=120, sellers=9)
    definition = ProductLightIndex() if light else ProductRowsIndex()
    batches = iter_batches(definition.get_queryset(), 50)
    built = build_batches(definition, "bench", batches, lambda n: None, pytest.fail)

    by_reindex = [(header["index"]["_id"], body) for actions in built for header, body in actions]

    assert [pair for batch in documents(50, light) for pair in batch] == by_reindex
    assert len(by_reindex) == 120


@pytest.mark.stream
def test_the_stream_benchmark_measures_each_capture_the_stream_against_drain_and_the_lag():
    """On a logical-decoding cluster of its own: four ways of capturing, the same documents each way, every probe."""
    command = [sys.executable, "benchmarks/stream_benchmark.py", "--rows", "300", "--write-rounds", "1"]
    command += ["--saves", "4", "--update-rows", "50", "--rounds", "1", "--servers", "sink", "--documents", "light"]
    done = subprocess.run(
        [*command, "--seconds", "2", "--rates", "20", "--json"], capture_output=True, text=True, timeout=600, cwd=ROOT
    )

    assert done.returncode == 0, done.stderr
    figures = json.loads(done.stdout)["figures"]
    assert {"none", "signals", "triggers", "stream"} <= set(figures["writes"])
    assert all(figures["writes"][way]["save_median_ms"] > 0 for way in ("none", "signals", "triggers", "stream"))
    [throughput] = figures["throughput"]
    assert throughput["stream"]["docs"] == throughput["drain"]["docs"] == 300  # every product updated, each way
    assert [(lag["consumer"], lag["probes_found"]) for lag in figures["lag"]] == [("stream", 20), ("drain", 20)]


def test_the_drain_bound_benchmark_measures_a_drain_without_the_queues_writes_beside_the_real_one():
    """Its patch still applies to the queue's code, and the patched copy is the one measured: it writes nothing."""
    command = [sys.executable, "benchmarks/drain_bound.py", "--rows", "300", "--rounds", "1", "--document", "light"]
    done = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=600, cwd=ROOT)

    assert done.returncode == 0, done.stderr  # "drain_bound.patch no longer applies": refresh the patch
    figures = json.loads(done.stdout)["figures"]
    assert figures["rebuild"]["docs"] == figures["drain"]["docs"] == figures["bound"]["docs"] == 300
    # A real drain claims (one write) and acknowledges (one delete) each batch; the bound does neither.
    assert figures["bound"]["queries"] < figures["drain"]["queries"]
    assert figures["drain_over_rebuild"]["median"] > 0 and figures["bound_over_rebuild"]["median"] > 0
