"""Nobody is watching: locks, the sanity guard, failed-row files, ownership, rollback and prune."""

from __future__ import annotations

import json
from typing import Any

import pytest

from reindex.operations.rebuilding import rebuild
from reindex.server import indexes
from reindex.server.locking import LOCK_INDEX, AliasLock, read_holder
from tests.helpers import hold_lock_as, live_index, names_of


class TestOneRunPerAlias:
    def test_a_run_that_finds_the_alias_locked_exits_3_and_changes_nothing(self, catalog, reindex, es):
        catalog(products=10)
        assert reindex("rebuild", "products").exit_code == 0
        before = live_index(es, "products")
        hold_lock_as(es, "products", "web2", 4242, age=5)

        run = reindex("rebuild", "products")

        assert run.exit_code == 3
        assert "products: skipped: locked by web2:4242 since " in run.stderr
        assert names_of(es, "products") == [before]
        assert read_holder(es, "products").host == "web2"  # not ours to release

    def test_status_says_who_holds_the_lock(self, catalog, reindex, es):
        catalog(products=3)
        assert reindex("rebuild", "products").exit_code == 0
        assert "locked by" not in reindex("status", "products").stdout
        hold_lock_as(es, "products", "web2", 4242, age=5)

        run = reindex("status", "products")
        [report] = json.loads(reindex("status", "products", "--json").stdout)

        assert "  locked by web2:4242 since " in run.stdout
        assert (report["lock"]["host"], report["lock"]["pid"], report["lock"]["token"]) == ("web2", 4242, None)

    def test_a_stale_lock_is_taken_over_and_said_so(self, catalog, reindex, es):
        catalog(products=10)
        hold_lock_as(es, "products", "web2", 4242, age=3600)

        run = reindex("rebuild", "products")

        assert run.exit_code == 0, run.stderr
        assert "took over a stale lock held by web2:4242" in run.stderr
        assert es.count(index="products")["count"] == 10
        assert read_holder(es, "products") is None

    def test_the_lock_is_released_after_success_and_after_failure(self, catalog, reindex, es, settings):
        settings.REINDEX = {**settings.REINDEX, "INDEXES": ["tests.definitions.PoisonIndex"]}
        catalog(products=10)
        assert reindex("rebuild", "poison").exit_code == 0
        assert read_holder(es, "poison") is None
        from catalog.models import Product

        Product.objects.filter(pk=Product.objects.order_by("pk")[0].pk).update(name="POISON pill")

        assert reindex("rebuild", "poison").exit_code == 1
        assert read_holder(es, "poison") is None

    def test_only_one_of_two_takers_of_a_stale_lock_wins(self, es):
        hold_lock_as(es, "products", "web2", 4242, age=3600)
        first, second = AliasLock(es, "products", ttl=60), AliasLock(es, "products", ttl=60)
        stale = es.get(index=LOCK_INDEX, id="products")

        first.acquire()
        # the second taker read the stale document before the first one wrote its own
        from elasticsearch import ConflictError

        with pytest.raises(ConflictError):
            second._put(second.holder, (stale["_seq_no"], stale["_primary_term"]))
        first.release()

    def test_a_run_whose_lock_was_taken_over_may_not_swap(self, es):
        lock = AliasLock(es, "products", ttl=60)
        lock.acquire()
        hold_lock_as(es, "products", "web3", 99, age=0)  # someone overwrote our lock

        with pytest.raises(Exception, match="another run took the lock over"):
            lock.check()
        lock.release()
        assert read_holder(es, "products").host == "web3"  # release left theirs alone


class TestTheSanityGuard:
    def test_an_emptied_table_does_not_wipe_search(self, catalog, reindex, es):
        from catalog.models import Product

        catalog(products=20)
        assert reindex("rebuild", "products").exit_code == 0
        before = live_index(es, "products")
        Product.objects.all().delete()

        run = reindex("rebuild", "products")

        assert run.exit_code == 1
        assert "holds 0 documents, fewer than 0.5 of the 20 in the live index" in run.stderr
        assert live_index(es, "products") == before
        assert es.count(index="products")["count"] == 20
        assert names_of(es, "products") == [before]

    def test_force_swaps_anyway(self, catalog, reindex, es):
        from catalog.models import Product

        catalog(products=20)
        assert reindex("rebuild", "products").exit_code == 0
        Product.objects.filter(pk__in=list(Product.objects.values_list("pk", flat=True)[:15])).delete()

        assert reindex("rebuild", "products").exit_code == 1
        run = reindex("rebuild", "products", "--force")

        assert run.exit_code == 0, run.stderr
        assert es.count(index="products")["count"] == 5

    def test_the_ratio_is_configurable(self, catalog, reindex, es, settings):
        from catalog.models import Product

        settings.REINDEX = {**settings.REINDEX, "MIN_RATIO": 0.9}
        catalog(products=20)
        assert reindex("rebuild", "products").exit_code == 0
        Product.objects.filter(pk=Product.objects.order_by("pk")[0].pk).delete()
        Product.objects.filter(pk=Product.objects.order_by("pk")[0].pk).delete()
        Product.objects.filter(pk=Product.objects.order_by("pk")[0].pk).delete()

        assert reindex("rebuild", "products").exit_code == 1  # 17 < 0.9 * 20
        assert reindex("rebuild", "products", "--min-ratio", "0.8").exit_code == 0


class TestFailedRows:
    @pytest.fixture(autouse=True)
    def poison_registered(self, settings):
        settings.REINDEX = {**settings.REINDEX, "INDEXES": ["tests.definitions.PoisonIndex"]}

    def test_the_errors_file_has_one_json_line_per_failed_row(self, catalog, reindex, es, tmp_path):
        from catalog.models import Product

        catalog(products=30)
        rows = list(Product.objects.order_by("pk"))
        for row, prefix in zip(rows[:3], ["POISON", "BADPRICE", "NOTADICT"], strict=True):
            Product.objects.filter(pk=row.pk).update(name=f"{prefix} {row.name}")
        errors_file = tmp_path / "failed.jsonl"

        run = reindex("rebuild", "poison", "--max-errors", "3", "--errors-file", str(errors_file), "--json")

        assert run.exit_code == 0, run.stderr
        lines = [json.loads(line) for line in errors_file.read_text().splitlines()]
        by_id = {line["id"]: line for line in lines}
        assert set(by_id) == {str(r.pk) for r in rows[:3]}
        assert by_id[str(rows[0].pk)]["error_type"] == "prepare"
        assert by_id[str(rows[1].pk)]["error_type"].endswith("parsing_exception")  # the server's own type
        assert "not a dict" in by_id[str(rows[2].pk)]["reason"]
        [report] = json.loads(run.stdout)
        assert (report["indexed"], report["failed"]) == (27, 3)
        assert es.count(index="poison")["count"] == 27  # the other rows are all there


def test_duplicate_document_ids_are_reported(catalog, es):
    from tests.definitions import TinyIndex

    class Collide(TinyIndex):
        alias = "products"

        def get_id(self, row: Any) -> str:
            return str(row["pk"] % 7)

    catalog(products=10)
    seen = []

    result = rebuild(Collide(), es, on_failure=seen.append)

    assert result.duplicates == 3
    assert result.indexed == 7 == es.count(index="products")["count"]
    assert {f.error_type for f in seen} == {"duplicate_id"}
    assert len(seen) == 3


def test_a_resent_bulk_request_is_not_mistaken_for_duplicates(es):
    """A bulk request resent after its answer was lost reports "updated" for documents never counted."""
    from reindex.operations.rebuilding import RebuildResult, verify

    es.indices.create(index="products-1")
    for n in range(10):
        es.index(index="products-1", id=str(n), document={"n": n})
    es.indices.refresh(index="products-1")
    result = RebuildResult(alias="products", definition="x", new_index="products-1", indexed=7, duplicates=5)

    verify(es, result)

    assert (result.indexed, result.duplicates) == (10, 2)


class TestOwnership:
    def make_concrete(self, es: Any) -> None:
        es.indices.create(index="products", mappings={"properties": {"name": {"type": "text"}}})
        for n in range(3):
            es.index(index="products", id=f"legacy-{n}", document={"name": f"legacy {n}"})
        es.indices.refresh(index="products")

    def test_a_concrete_index_under_the_alias_name_is_refused(self, catalog, reindex, es):
        catalog(products=5)
        self.make_concrete(es)

        run = reindex("rebuild", "products")

        assert run.exit_code == 2
        assert "--replace-existing-index" in run.stderr
        assert es.count(index="products")["count"] == 3
        assert not es.indices.exists_alias(name="products")

    def test_replace_existing_index_swaps_it_for_the_alias_atomically(self, catalog, reindex, es):
        catalog(products=5)
        self.make_concrete(es)

        run = reindex("rebuild", "products", "--replace-existing-index", "--json")

        assert run.exit_code == 0, run.stderr
        [report] = json.loads(run.stdout)
        assert report["replaced_index"] == "products"
        assert live_index(es, "products") == report["new_index"]
        assert es.count(index="products")["count"] == 5

    def test_indexes_matching_the_pattern_but_not_ours_are_never_deleted(self, catalog, reindex, es):
        catalog(products=5)
        es.indices.create(index="products-archive")

        assert reindex("rebuild", "products").exit_code == 0
        assert reindex("rebuild", "products").exit_code == 0
        assert reindex("prune", "products", "--keep", "0").exit_code == 0

        assert es.indices.exists(index="products-archive")


class TestRollbackAndPrune:
    def test_rollback_restores_the_previous_documents(self, catalog, reindex, es):
        catalog(products=12, seed=1)
        assert reindex("rebuild", "products", "--keep", "1").exit_code == 0
        first = live_index(es, "products")
        old_doc = es.search(index="products", sort=["_doc"], size=1)["hits"]["hits"][0]
        catalog(products=10, seed=2)
        assert reindex("rebuild", "products", "--keep", "1").exit_code == 0

        run = reindex("rollback", "products")

        assert run.exit_code == 0, run.stderr
        assert live_index(es, "products") == first
        assert f"products: alias -> {first} (12 documents" in run.stdout
        assert es.count(index="products")["count"] == 12
        assert es.get(index="products", id=old_doc["_id"])["_source"] == old_doc["_source"]

    def test_rollback_refuses_when_nothing_was_kept(self, catalog, reindex, es):
        catalog(products=5)
        assert reindex("rebuild", "products").exit_code == 0
        assert reindex("rebuild", "products").exit_code == 0
        before = live_index(es, "products")

        run = reindex("rollback", "products")

        assert run.exit_code == 1
        assert "no previous index to roll back to" in run.stderr
        assert live_index(es, "products") == before

    def test_prune_keeps_the_newest_and_the_live_one(self, catalog, reindex, es):
        catalog(products=5)
        built = []
        for _ in range(4):
            assert reindex("rebuild", "products", "--keep", "5").exit_code == 0
            built.append(live_index(es, "products"))

        run = reindex("prune", "products", "--keep", "1", "--json")

        assert run.exit_code == 0, run.stderr
        assert json.loads(run.stdout) == {"alias": "products", "dropped": built[:2], "kept": [built[2]]}
        assert names_of(es, "products") == built[2:]

    def test_prune_deletes_a_partial_index_left_by_a_killed_run(self, catalog, reindex, es):
        from catalog.indexes import ProductIndex

        from reindex.operations.rebuilding import create_new_index

        catalog(products=5)
        assert reindex("rebuild", "products").exit_code == 0
        partial = create_new_index(es, ProductIndex())  # as a run killed mid-load leaves it

        run = reindex("prune", "products", "--keep", "0", "--json")

        assert partial in json.loads(run.stdout)["dropped"]
        assert names_of(es, "products") == [live_index(es, "products")]
        assert indexes.alias_targets(es, "products") != [partial]


def test_turning_tls_verification_off_is_warned_about(db, reindex, settings):
    settings.REINDEX = {**settings.REINDEX, "VERIFY_CERTS": False}

    run = reindex("status", "products")

    assert run.exit_code == 0, run.stderr
    assert "reindex: warning: TLS certificate verification is off" in run.stderr


def test_tls_verification_is_on_by_default(db, reindex):
    from reindex.config import Config
    from reindex.server.connection import client_options

    options, _ = client_options(Config(hosts=("https://search.example:9200",)))

    assert options.get("verify_certs", True) is True
    assert "warning" not in reindex("status", "products").stderr


def test_a_mapping_the_server_rejects_fails_before_any_row_is_read(catalog, reindex, es, settings):
    settings.REINDEX = {**settings.REINDEX, "INDEXES": ["tests.definitions.RejectedMappingIndex"]}
    catalog(products=5)

    run = reindex("rebuild", "tiny")

    assert run.exit_code == 2
    assert "the server rejected the definition of tiny-" in run.stderr
    assert "no_such_type" in run.stderr  # the server's own reason
    assert dict(es.indices.get(index="tiny-*")) == {}
    assert read_holder(es, "tiny") is None
