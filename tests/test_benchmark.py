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
            "reindex,reindex-workers,raw,ceiling",
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
    assert sorted(by_name) == ["ceiling", "raw", "reindex", "reindex-workers"]
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


def test_the_heavy_benchmark_document_is_the_light_one_with_its_derived_fields(catalog, es, es_url):
    """The heavy document adds fields built in prepare(); the server's strict mapping takes every one."""
    import reindex
    from benchmarks.definitions import HeavyProductRowsIndex, ProductRowsIndex
    from tests.helpers import stored

    catalog(products=30)
    [result] = reindex.rebuild(HeavyProductRowsIndex(), es_url=es_url)

    light = ProductRowsIndex()
    assert result.indexed == light.get_queryset().count() > 0
    row = light.get_queryset().order_by("pk").first()
    light.load_batch([row])
    document = stored(es, "products", row["pk"])
    assert document is not None
    assert {k: document[k] for k in ("name", "category", "sellers")} == {
        k: light.prepare(row)[k] for k in ("name", "category", "sellers")
    }
    assert document["slug"].endswith(str(row["sku"])) and document["prefixes"] and document["keywords"]
    assert document["countries"] == sorted({s["country"] for s in document["sellers"]})
