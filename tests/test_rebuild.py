"""A full rebuild: fresh timestamped index, every row as a document, alias moved, old index gone."""

from __future__ import annotations

import json
import re

import pytest

from reindex.server import indexes
from tests.helpers import live_index, names_of

TIMESTAMPED = re.compile(r"^products-\d{20}$")


def test_first_rebuild_points_the_alias_at_a_fresh_index_holding_every_row(catalog, reindex, es):
    catalog(products=120)

    run = reindex("rebuild", "products")

    assert run.exit_code == 0, run.stderr
    index = live_index(es, "products")
    assert TIMESTAMPED.match(index)
    assert es.count(index="products")["count"] == 120
    assert "120 indexed, 0 failed of 120 rows" in run.stdout
    assert index in run.stdout


def test_documents_carry_denormalised_data_and_lead_back_to_their_row(catalog, reindex, es):
    from catalog.models import Product

    catalog(products=30)
    assert reindex("rebuild", "products").exit_code == 0

    product = Product.objects.select_related("category").prefetch_related("sellers").order_by("pk")[7]
    doc = es.get(index="products", id=str(product.pk))["_source"]
    assert doc["name"] == product.name
    assert doc["category"]["name"] == product.category.name
    assert sorted(s["name"] for s in doc["sellers"]) == sorted(s.name for s in product.sellers.all())
    assert doc["price"] == float(product.price)
    assert doc["sku"] == str(product.sku)


def test_a_second_rebuild_moves_the_alias_and_drops_the_old_index(catalog, reindex, es):
    catalog(products=40)
    assert reindex("rebuild", "products").exit_code == 0
    first = live_index(es, "products")
    catalog(products=25)  # the table changed overnight

    run = reindex("rebuild", "products")

    assert run.exit_code == 0, run.stderr
    second = live_index(es, "products")
    assert second > first
    assert names_of(es, "products") == [second]
    assert es.count(index="products")["count"] == 25
    assert f"dropped {first}" in run.stdout


def test_keep_leaves_previous_indexes_for_rollback(catalog, reindex, es):
    catalog(products=10)
    built = []
    for _ in range(3):
        assert reindex("rebuild", "products", "--keep", "1").exit_code == 0
        built.append(live_index(es, "products"))

    assert names_of(es, "products") == built[1:]
    assert live_index(es, "products") == built[2]


def test_load_settings_are_restored_after_the_load(catalog, reindex, es):
    catalog(products=5)
    assert reindex("rebuild", "products").exit_code == 0
    index = live_index(es, "products")
    settings = es.indices.get_settings(index=index, flat_settings=True)[index]["settings"]
    assert settings.get("index.refresh_interval") != "-1"
    assert str(settings["index.number_of_replicas"]) == "0"  # declared by ProductIndex
    meta = es.indices.get_mapping(index=index)[index]["mappings"]["_meta"]["reindex"]
    assert meta["owner"] == "reindex"
    assert meta["definition"] == "catalog.indexes.ProductIndex"


def test_rebuild_without_names_rebuilds_every_definition(catalog, reindex, es):
    catalog(products=12, categories=3)

    run = reindex("rebuild")

    assert run.exit_code == 0, run.stderr
    assert es.count(index="products")["count"] == 12
    assert es.count(index="categories")["count"] == 3


def test_json_report_describes_the_run(catalog, reindex, es):
    catalog(products=15)
    first = reindex("rebuild", "products", "--json")
    second = reindex("rebuild", "products", "--json")

    assert second.exit_code == 0
    [report] = json.loads(second.stdout)
    assert report["alias"] == "products"
    assert report["new_index"] == live_index(es, "products")
    assert report["old_indexes"] == [json.loads(first.stdout)[0]["new_index"]]
    assert (report["rows_read"], report["indexed"], report["failed"]) == (15, 15, 0)
    assert report["swapped"] is True
    assert report["dropped"] == report["old_indexes"]
    assert report["seconds"] >= 0
    assert second.stderr == ""


def test_batches_smaller_than_the_table_still_index_every_row(catalog, reindex, es):
    catalog(products=53)

    run = reindex("rebuild", "products", "--batch-size", "10")

    assert run.exit_code == 0, run.stderr
    assert es.count(index="products")["count"] == 53


def test_values_querysets_are_read_in_keyset_batches(catalog, reindex, es, settings):
    settings.REINDEX = {**settings.REINDEX, "INDEXES": ["tests.definitions.TinyIndex"]}
    catalog(products=23)

    run = reindex("rebuild", "tiny", "--batch-size", "5")

    assert run.exit_code == 0, run.stderr
    assert es.count(index="tiny")["count"] == 23


class TestAFailedRunChangesNothing:
    @pytest.fixture(autouse=True)
    def poison_registered(self, settings):
        settings.REINDEX = {**settings.REINDEX, "INDEXES": ["tests.definitions.PoisonIndex"]}

    def poison(self, prefix: str) -> int:
        from catalog.models import Product

        product = Product.objects.order_by("pk")[3]
        product.name = f"{prefix} {product.name}"
        product.save()
        return product.pk

    def test_a_row_whose_prepare_raises_aborts_before_the_swap(self, catalog, reindex, es):
        catalog(products=20)
        assert reindex("rebuild", "poison").exit_code == 0
        before = live_index(es, "poison")
        bad_pk = self.poison("POISON")

        run = reindex("rebuild", "poison")

        assert run.exit_code == 1
        assert live_index(es, "poison") == before
        assert es.count(index="poison")["count"] == 20
        assert names_of(es, "poison") == [before]
        [line] = run.stderr.splitlines()  # one line, as every failure
        assert line.startswith("reindex: error: poison: 1 rows failed, more than --max-errors 0")
        assert f"(first: id {bad_pk}: ValueError: cannot index" in line
        assert line.endswith(f"; alias left on {before}")

    def test_verbose_shows_the_failed_rows_with_the_traceback_of_prepare(self, catalog, reindex, es):
        catalog(products=20)
        bad_pk = self.poison("POISON")

        run = reindex("-v", "rebuild", "poison")

        assert run.exit_code == 1
        start, *lines = run.stderr.splitlines()
        assert start.startswith("reindex: poison: rebuild started: 20 rows into poison-")  # -v shows the start
        assert lines[0].startswith("reindex: error: poison: 1 rows failed")
        assert any(line.startswith(f"poison: row {bad_pk} failed: ValueError: cannot index") for line in lines[1:])
        assert "in prepare" in run.stderr and 'raise ValueError(f"cannot index' in run.stderr

    @pytest.mark.parametrize(
        "prefix, reason",
        [
            ("POISON", "ValueError: cannot index"),
            ("BADPRICE", "failed to parse"),
            ("NOTADICT", "not a dict"),
            ("UNSERIALISABLE", "TypeError"),
        ],
    )
    def test_bad_rows_are_counted_and_reported_within_max_errors(self, catalog, reindex, es, prefix, reason):
        catalog(products=20)
        bad_pk = self.poison(prefix)

        run = reindex("rebuild", "poison", "--max-errors", "1", "--json")

        assert run.exit_code == 0, run.stderr
        [report] = json.loads(run.stdout)
        assert (report["indexed"], report["failed"]) == (19, 1)
        [failure] = report["failures"]
        assert failure["id"] == str(bad_pk)
        assert reason in failure["reason"]
        assert es.count(index="poison")["count"] == 19

    def test_a_failed_first_build_leaves_no_alias_and_no_index(self, catalog, reindex, es):
        catalog(products=8)
        self.poison("POISON")

        run = reindex("rebuild", "poison")

        assert run.exit_code == 1
        assert indexes.alias_targets(es, "poison") == []
        assert names_of(es, "poison") == []
        assert "alias left on nothing" in run.stderr


def test_an_empty_table_builds_an_empty_index(db, reindex, es):
    run = reindex("rebuild", "products")

    assert run.exit_code == 0, run.stderr
    assert es.count(index="products")["count"] == 0
