"""``reindex sweep`` removes the documents of rows that left no trace; ``reindex verify`` compares index and table."""

from __future__ import annotations

import json
from typing import Any

import pytest

import reindex
from tests.helpers import hold_lock_as, live_index, stored


def products(**filters: Any) -> Any:
    from catalog.models import Product

    return Product.objects.filter(**filters).order_by("pk")


@pytest.fixture
def built(catalog, reindex):
    """A catalog of 30 products, rebuilt."""
    catalog(products=30)
    assert reindex("rebuild", "products").exit_code == 0


class TestSweep:
    def test_rows_deleted_outright_are_swept_page_by_page(self, built, reindex, es):
        doomed = list(products().values_list("pk", flat=True)[3:10])
        products(pk__in=doomed).delete()  # no timestamp left for update to find

        run = reindex("sweep", "products", "--batch-size", "4", "--json")

        assert run.exit_code == 0, run.stderr
        [report] = json.loads(run.stdout)
        assert (report["documents"], report["deleted"], report["failed"]) == (30, 7, 0)
        assert all(stored(es, "products", pk) is None for pk in doomed)
        assert es.count(index="products")["count"] == 23

    def test_rows_the_queryset_leaves_out_are_swept_too(self, built, reindex, es):
        withdrawn = products()[0]
        products(pk=withdrawn.pk).update(is_active=False)  # no timestamp either

        run = reindex("sweep", "products")

        assert run.exit_code == 0
        assert run.stdout.startswith("products: 30 documents checked in products-")
        assert ": 1 deleted (rows gone or filtered out), 0 failed in " in run.stdout
        assert stored(es, "products", withdrawn.pk) is None

    def test_documents_no_row_can_have_are_swept(self, built, reindex, es):
        es.index(index=live_index(es, "products"), id="not-a-pk", document={"name": "stray"})

        [report] = json.loads(reindex("sweep", "products", "--json").stdout)

        assert report["deleted"] == 1 and stored(es, "products", "not-a-pk") is None

    def test_a_second_sweep_finds_nothing(self, built, reindex):
        products()[0].delete()
        reindex("sweep", "products")

        [report] = json.loads(reindex("sweep", "products", "--json").stdout)

        assert (report["documents"], report["deleted"]) == (29, 0)

    def test_a_locked_alias_is_skipped(self, built, reindex, es):
        hold_lock_as(es, "products", "web2", 4242, age=5)

        run = reindex("sweep", "products")

        assert run.exit_code == 3 and "skipped: locked by web2:4242" in run.stderr

    def test_from_python(self, built, es_url, settings):
        settings.REINDEX = {**settings.REINDEX, "HOSTS": [es_url]}
        products()[0].delete()

        [result] = reindex.sweep("products")

        assert (result.documents, result.deleted) == (30, 1)


class TestVerify:
    def test_a_fresh_index_agrees(self, built, reindex):
        run = reindex("verify", "products", "--full")

        assert run.exit_code == 0, run.stderr
        assert run.stdout.startswith("products: agrees (full, 30 rows and 30 documents checked): 30 rows, 30 documents")
        assert run.stdout.rstrip().endswith("; 0 missing, 0 orphans, 0 stale")

    def test_every_kind_of_drift_is_found_and_exits_1(self, built, reindex, es):
        from catalog.models import Category

        index = live_index(es, "products")
        first, second, third = products()[:3]
        es.delete(index=index, id=str(first.pk))  # missing
        products(pk=second.pk).delete()  # orphan
        third.name = "Renamed"
        third.save()  # stale until the next update
        category = Category.objects.exclude(pk=third.category_id).first()
        Category.objects.filter(pk=category.pk).update(name="Renamed shelf")  # stale: every product of it
        shelf = products(category=category).exclude(pk=first.pk).count()  # the missing one is not stale

        run = reindex("verify", "products", "--full", "--batch-size", "7", "--json")

        assert run.exit_code == 1
        [report] = json.loads(run.stdout)
        assert (report["agrees"], report["rows"], report["documents"]) == (False, 29, 29)
        assert (report["missing"], report["orphans"], report["stale"]) == (1, 1, 1 + shelf)
        assert report["missing_ids"] == [str(first.pk)] and report["orphan_ids"] == [str(second.pk)]
        assert str(third.pk) in report["stale_ids"]
        line = reindex("verify", "products", "--full").stdout
        assert line.startswith("products: drift (full, ") and f"1 missing ({first.pk})" in line

    def test_update_and_sweep_bring_it_back(self, built, reindex, es):
        products()[0].delete()
        second = products()[1]
        second.name = "Renamed"
        second.save()
        assert reindex("verify", "products", "--full").exit_code == 1

        reindex("update", "products")
        reindex("sweep", "products")

        assert reindex("verify", "products", "--full").exit_code == 0

    def test_a_sample_checks_random_rows_and_documents(self, built, reindex, es):
        products().update(name="Renamed")  # every document stale (auto_now bypassed)

        run = reindex("verify", "products", "--sample", "5", "--json")

        [report] = json.loads(run.stdout)
        assert run.exit_code == 1
        assert (report["mode"], report["checked_rows"], report["checked_documents"]) == ("sample", 5, 5)
        assert report["stale"] == 5 and report["missing"] == report["orphans"] == 0

    def test_a_sample_sees_a_count_that_differs(self, built, reindex, es):
        es.index(index=live_index(es, "products"), id="999999", document={"name": "stray"}, refresh=True)

        [report] = json.loads(reindex("verify", "products", "--sample", "3", "--json").stdout)

        assert (report["rows"], report["documents"], report["agrees"]) == (30, 31, False)

    def test_quiet_prints_only_drift(self, built, reindex):
        assert reindex("-q", "verify", "products").stdout == ""
        products()[0].delete()

        run = reindex("-q", "verify", "products", "--full")

        assert (run.exit_code, run.stdout) == (1, "")
        assert run.stderr.startswith("products: drift (full, ")

    def test_sample_and_full_do_not_go_together(self, built, reindex):
        assert reindex("verify", "--sample", "3", "--full").exit_code == 2

    def test_an_alias_not_built_is_an_error(self, catalog, reindex):
        catalog(products=2)

        run = reindex("verify", "products")

        assert run.exit_code == 2 and "products: not built" in run.stderr

    def test_from_python(self, built, es_url, settings):
        settings.REINDEX = {**settings.REINDEX, "HOSTS": [es_url]}

        [result] = reindex.verify("products", full=True)

        assert result.agrees and result.checked_rows == 30
        assert json.loads(json.dumps(result.as_dict()))["agrees"] is True
