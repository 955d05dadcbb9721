"""Loading with ``--workers N``: each worker process builds and sends its own primary-key ranges."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reindex.config import Config
from reindex.executors.ranges import pk_ranges
from reindex.operations.rebuilding import rebuild
from reindex.server import indexes
from tests.helpers import sources


def test_two_workers_build_the_same_documents_as_one_process(catalog, reindex, es, transactional_db):
    catalog(products=230)
    assert reindex("rebuild", "products", "--batch-size", "20").exit_code == 0
    alone = sources(es, "products")

    run = reindex("rebuild", "products", "--workers", "2", "--batch-size", "20", "--json")

    assert run.exit_code == 0, run.stderr
    [report] = json.loads(run.stdout)
    assert (report["rows_read"], report["indexed"], report["failed"]) == (230, 230, 0)
    assert report["swapped"] is True
    assert sources(es, "products") == alone


class Recorder:
    """A progress bar that remembers what it was told."""

    def __init__(self, total: int, description: str) -> None:
        self.total, self.description, self.updates, self.closed = total, description, [], False

    def update(self, n: int) -> None:
        self.updates.append(n)

    def close(self) -> None:
        self.closed = True


@pytest.mark.parametrize("start", ["fork", "spawn"])
def test_workers_progress_and_failures_are_merged_in_the_parent(catalog, es, es_url, transactional_db, start):
    from catalog.models import Product

    from tests.definitions import PoisonIndex

    catalog(products=120)
    bad = list(Product.objects.order_by("pk").values_list("pk", flat=True)[5::40])  # 3 rows across ranges
    Product.objects.filter(pk__in=bad).update(name="POISON pill")
    bars: list[Recorder] = []

    def progress(total: int, description: str) -> Recorder:
        bars.append(Recorder(total, description))
        return bars[-1]

    config = Config(hosts=(es_url,), batch_size=10, workers=2, max_errors=3, worker_start=start)
    result = rebuild(PoisonIndex(), es, config, progress=progress)

    assert (result.rows_read, result.indexed, result.failed) == (120, 117, 3)
    assert sorted(int(f.id) for f in result.failures) == sorted(bad)
    [bar] = bars
    assert (bar.total, sum(bar.updates), bar.closed) == (120, 120, True)
    assert es.count(index="poison")["count"] == 117


def test_too_many_failures_in_the_workers_fail_the_run_and_keep_the_alias(
    catalog, reindex, es, settings, transactional_db
):
    from catalog.models import Product

    settings.REINDEX = {**settings.REINDEX, "INDEXES": ["tests.definitions.PoisonIndex"]}
    catalog(products=60)
    assert reindex("rebuild", "poison").exit_code == 0
    live = indexes.alias_targets(es, "poison")
    Product.objects.filter(pk__in=Product.objects.order_by("pk").values("pk")[10:12]).update(name="POISON")

    run = reindex("rebuild", "poison", "--workers", "2", "--max-errors", "1")

    assert run.exit_code == 1
    assert "more than --max-errors 1" in run.stderr
    assert indexes.alias_targets(es, "poison") == live
    assert sorted(dict(es.indices.get(index="poison-*"))) == live


def test_a_cron_run_with_workers(catalog, reindex_process, es):
    catalog(products=75)

    done = reindex_process("rebuild", "products", "--workers", "2", "--batch-size", "10")

    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("products: 75 indexed, 0 failed of 75 rows")
    assert es.count(index="products")["count"] == 75


@pytest.mark.parametrize("parts", [1, 2, 3, 8, 50])
def test_pk_ranges_split_sparse_keys_into_balanced_parts_covering_every_row_once(catalog, parts):
    from catalog.models import Product
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    catalog(products=90)
    Product.objects.filter(pk__in=Product.objects.order_by("pk").values("pk")[20:50]).delete()  # a gap
    pks = list(Product.objects.order_by("pk").values_list("pk", flat=True))

    with CaptureQueriesContext(connection) as queries:
        ranges = pk_ranges(Product.objects.all(), len(pks), parts)

    def inside(pk: int, after: Any, upto: Any) -> bool:
        return (after is None or pk > after) and (upto is None or pk <= upto)

    per_range = [[pk for pk in pks if inside(pk, *r)] for r in ranges]
    assert sorted(pk for part in per_range for pk in part) == pks
    assert len(ranges) <= parts
    assert max(map(len, per_range)) == -(-len(pks) // parts)  # no range above its fair share
    assert len(queries) == (1 if parts > 1 else 0)
    assert not [q for q in queries if "OFFSET" in q["sql"].upper()]


@pytest.mark.parametrize("name", [":memory:", "file:memdb1?mode=memory&cache=shared"])
def test_workers_refuse_an_in_memory_database(name, db):
    from django.db import connections

    from reindex.errors import ConfigurationError
    from reindex.executors.parallel import worker_setup

    original = connections["default"].settings_dict["NAME"]
    connections["default"].settings_dict["NAME"] = name
    try:
        with pytest.raises(ConfigurationError, match="in-memory"):
            worker_setup(Config())
    finally:
        connections["default"].settings_dict["NAME"] = original


def test_workers_refuse_to_load_inside_a_transaction(catalog, es, es_url, transactional_db):
    from catalog.indexes import ProductIndex
    from django.db import transaction

    from reindex.errors import ConfigurationError

    catalog(products=20)
    with pytest.raises(ConfigurationError, match="inside a transaction on 'default'"), transaction.atomic():
        rebuild(ProductIndex(), es, Config(hosts=(es_url,), workers=2))

    assert indexes.alias_targets(es, "products") == []
    assert dict(es.indices.get(index="products-*")) == {}


def test_an_unknown_worker_start_method_is_a_configuration_error(catalog, reindex, settings, transactional_db):
    settings.REINDEX = {**settings.REINDEX, "WORKER_START": "teleport"}
    catalog(products=5)

    run = reindex("rebuild", "products", "--workers", "2")

    assert run.exit_code == 2
    assert "REINDEX['WORKER_START'] must be None or one of fork" in run.stderr


def test_a_worker_that_exits_quietly_mid_range_fails_the_run_instead_of_hanging(catalog, es, es_url, transactional_db):
    from catalog.models import Product

    from reindex.errors import RunFailed
    from tests.definitions import PoisonIndex

    catalog(products=40)
    Product.objects.filter(pk=Product.objects.order_by("pk")[3].pk).update(name="EXIT now")

    with pytest.raises(RunFailed, match=r"the workers exited with 1 of their ranges not loaded"):
        rebuild(PoisonIndex(), es, Config(hosts=(es_url,), batch_size=5, workers=2))

    assert indexes.alias_targets(es, "poison") == []
    assert dict(es.indices.get(index="poison-*")) == {}
