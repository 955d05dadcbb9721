"""``reindex update``: the rows changed since the watermark reach the live index, in place, within minutes."""

from __future__ import annotations

import json
import re
import threading
from typing import Any

import pytest
from django.utils import timezone

import reindex
from reindex.server.watermarks import read_watermark
from tests.helpers import hold_lock_as, live_index, stored


def products(**filters: Any) -> Any:
    from catalog.models import Product

    return Product.objects.filter(**filters).order_by("pk")


@pytest.fixture
def built(catalog, reindex):
    """A catalog of 40 products, rebuilt: the alias is live and has a watermark."""
    catalog(products=40)
    run = reindex("rebuild", "products")
    assert run.exit_code == 0, run.stderr
    return run


class TestChangedRows:
    def test_an_edited_row_is_searchable_after_the_next_update(self, built, reindex, es):
        product = products()[3]
        product.name = "Copper Kettle of the Week"
        product.save()

        run = reindex("update", "products", "--json")

        assert run.exit_code == 0, run.stderr
        [report] = json.loads(run.stdout)
        assert report["since_from"] == "watermark"
        assert report["indexed"] >= 1 and report["failed"] == 0 and report["deleted"] == 0
        assert stored(es, "products", product.pk)["name"] == "Copper Kettle of the Week"
        assert report["index"] == live_index(es, "products")

    def test_update_reads_only_the_changed_rows(self, built, reindex, settings):
        settings.REINDEX = {**settings.REINDEX, "UPDATE_OVERLAP": 0}
        reindex("update", "products")  # past the rebuild's own overlap
        for product in products()[:5]:
            product.save()

        [report] = json.loads(reindex("update", "products", "--json").stdout)

        assert (report["changed"], report["rows_read"], report["indexed"]) == (5, 5, 5)

    def test_the_queries_of_an_update_do_not_grow_with_the_table(self, catalog, reindex):
        """The same 5 changed rows, spread over the table, cost the same queries among 20 rows as among 400."""
        from django.db import connection

        def queries_of_an_update(rows: int) -> list[str]:
            catalog(products=rows)
            reindex("rebuild", "products")
            since = timezone.now()
            spread = list(products().values_list("pk", flat=True))[:: rows // 5]
            products(pk__in=spread).update(updated_at=timezone.now())
            statements: list[str] = []

            def record(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
                statements.append(sql)
                return execute(sql, params, many, context)

            with connection.execute_wrapper(record):
                run = reindex("update", "products", "--since", since.isoformat(), "--json")
            [report] = json.loads(run.stdout)
            assert (report["changed"], report["rows_read"]) == (5, 5)
            return statements

        small, large = queries_of_an_update(20), queries_of_an_update(400)

        assert len(small) == len(large)
        assert not any("OFFSET" in sql.upper() for sql in large)

    def test_a_new_row_is_added_and_a_withdrawn_one_deleted(self, built, reindex, es):
        from catalog.models import Category, Product, Seller

        new = Product.objects.create(name="Linen Apron", price="12.50", category=Category.objects.first())
        new.sellers.add(Seller.objects.first())
        withdrawn = products()[0]
        withdrawn.is_active = False
        withdrawn.save()

        [report] = json.loads(reindex("update", "products", "--json").stdout)

        assert report["deleted"] == 1
        assert stored(es, "products", new.pk)["sellers"][0]["name"] == Seller.objects.first().name
        assert stored(es, "products", withdrawn.pk) is None
        assert es.count(index="products")["count"] == 40

    def test_renaming_a_seller_updates_every_product_that_carries_it(self, built, reindex, es):
        from catalog.models import Seller

        seller = Seller.objects.order_by("pk").first()
        seller.name = "Maison Renamed"
        seller.save()
        carrying = list(products(sellers=seller).values_list("pk", flat=True))
        assert carrying

        assert reindex("update", "products").exit_code == 0

        for pk in carrying:
            assert "Maison Renamed" in [s["name"] for s in stored(es, "products", pk)["sellers"]]

    def test_a_bulk_update_must_set_the_timestamp_itself(self, built, reindex, es, settings):
        """``auto_now`` is set by save() only: ``queryset.update()`` bypasses it."""
        settings.REINDEX = {**settings.REINDEX, "UPDATE_OVERLAP": 0}
        reindex("update", "products")
        first, second = products()[:2]
        products(pk=first.pk).update(name="Forgotten")
        products(pk=second.pk).update(name="Remembered", updated_at=timezone.now())

        reindex("update", "products")

        assert stored(es, "products", first.pk)["name"] != "Forgotten"
        assert stored(es, "products", second.pk)["name"] == "Remembered"

    def test_a_summary_line_off_a_terminal_and_nothing_with_quiet(self, built, reindex):
        products()[0].save()

        run = reindex("update", "products")
        quiet = reindex("-q", "update", "products")

        assert run.exit_code == 0 and run.stderr == ""
        [line] = run.stdout.splitlines()
        assert re.match(
            r"products: \d+ changed since \S+ \(the watermark less the overlap\): \d+ indexed, 0 deleted, 0 failed "
            r"in [\d.]+s into products-\d{20}; watermark \S+$",
            line,
        ), line
        assert (quiet.exit_code, quiet.stdout, quiet.stderr) == (0, "", "")


class TestTheWatermark:
    def test_each_update_continues_where_the_last_one_left_off(self, built, reindex, es, settings):
        settings.REINDEX = {**settings.REINDEX, "UPDATE_OVERLAP": 0}
        rebuilt = read_watermark(es, "products")
        first = json.loads(reindex("update", "products", "--json").stdout)[0]
        second = json.loads(reindex("update", "products", "--json").stdout)[0]

        assert rebuilt is not None and rebuilt.command == "rebuild"
        assert first["since"] == rebuilt.time.isoformat()
        assert second["since"] == first["watermark"] and second["changed"] == 0
        mark = read_watermark(es, "products")
        assert (mark.command, mark.index, mark.time.isoformat()) == (
            "update",
            live_index(es, "products"),
            second["watermark"],
        )

    def test_status_says_how_fresh_the_alias_is(self, built, reindex, es):
        reindex("update", "products")
        mark = read_watermark(es, "products")

        run = reindex("status", "products")
        [report] = json.loads(reindex("status", "products", "--json").stdout)

        index = live_index(es, "products")
        assert f"  fresh up to {mark.time.isoformat(timespec='milliseconds')} (update into {index}" in run.stdout
        assert (report["watermark"]["command"], report["watermark"]["index"]) == ("update", index)

    def test_the_overlap_reads_back_before_the_watermark(self, built, reindex, es):
        mark = read_watermark(es, "products")

        [report] = json.loads(reindex("update", "products", "--json").stdout)

        assert report["since"] == (mark.time - timezone.timedelta(seconds=60)).isoformat()  # the default overlap

    def test_without_a_watermark_it_asks_for_since(self, catalog, reindex, es):
        catalog(products=5)
        assert reindex("rebuild", "products").exit_code == 0
        es.delete(index="reindex-locks", id="products:watermark")

        run = reindex("update", "products")

        assert run.exit_code == 2
        assert run.stderr.strip() == (
            "reindex: error: products: no watermark yet (no update or rebuild recorded one); "
            "pass --since (e.g. --since 1d), or run reindex rebuild products"
        )
        assert reindex("update", "products", "--since", "1d").exit_code == 0

    @pytest.mark.parametrize("since", ["90s", "15m", "2h", "1d", "1w", "2026-01-01T00:00:00+00:00", "2026-01-01"])
    def test_since_takes_a_duration_or_an_iso_time(self, built, reindex, since):
        run = reindex("update", "products", "--since", since, "--json")

        assert run.exit_code == 0, run.stderr
        assert json.loads(run.stdout)[0]["since_from"] == "since"

    def test_since_after_the_watermark_leaves_it_where_it_was(self, built, reindex, es):
        """An update that did not read every change since the watermark must not move it past them."""
        before = read_watermark(es, "products")

        run = reindex("update", "products", "--since", "5s", "--json")

        [report] = json.loads(run.stdout)
        assert (report["watermark_moved"], report["watermark"]) == (False, before.time.isoformat())
        assert read_watermark(es, "products") == before
        assert "(left where it was: --since starts after it)" in reindex("update", "products", "--since", "5s").stdout
        wide = reindex("update", "products", "--since", "1d", "--json")
        assert json.loads(wide.stdout)[0]["watermark_moved"] is True
        assert read_watermark(es, "products").time > before.time

    def test_since_that_is_neither_is_a_usage_error(self, built, reindex):
        run = reindex("update", "products", "--since", "yesterday")

        assert run.exit_code == 2
        assert "--since must be a duration (90s, 15m, 2h, 1d, 1w) or an ISO time" in run.stderr

    def test_after_a_rollback_the_watermark_does_not_apply(self, catalog, reindex):
        catalog(products=5)
        reindex("rebuild", "products", "--keep", "1")
        reindex("rebuild", "products", "--keep", "1")
        assert reindex("rollback", "products").exit_code == 0

        run = reindex("update", "products")

        assert run.exit_code == 2
        assert "the watermark was recorded for products-" in run.stderr and "(rolled back?)" in run.stderr


class TestEveryRow:
    def test_all_resends_every_document_in_place(self, built, reindex, es):
        """After ``migrate`` adds a field, no stored document has it until each is sent again."""
        index = live_index(es, "products")
        for product in products()[:3]:
            es.index(index=index, id=str(product.pk), document={"name": "from an older definition"})

        run = reindex("update", "products", "--all", "--json")

        [report] = json.loads(run.stdout)
        assert (report["since_from"], report["changed"], report["indexed"]) == ("all", 40, 40)
        assert all(stored(es, "products", p.pk)["sku"] == str(p.sku) for p in products()[:3])
        assert live_index(es, "products") == index  # in place: no new index

    def test_all_and_since_do_not_go_together(self, built, reindex):
        run = reindex("update", "products", "--all", "--since", "1h")

        assert run.exit_code == 2
        assert "--since and --all do not go together" in run.stderr

    def test_all_with_workers(self, built, reindex, es, transactional_db):
        for product in products()[:3]:
            es.index(index=live_index(es, "products"), id=str(product.pk), document={"name": "old"})

        run = reindex("update", "products", "--all", "--workers", "2", "--batch-size", "7", "--json")

        assert run.exit_code == 0, run.stderr
        assert json.loads(run.stdout)[0]["indexed"] == 40
        assert stored(es, "products", products()[0].pk)["name"] == products()[0].name

    def test_changes_with_workers(self, built, reindex, es, transactional_db):
        withdrawn = products()[1]
        withdrawn.is_active = False
        withdrawn.save()
        for product in products()[5:25]:
            product.name = f"Renamed {product.pk}"
            product.save()

        run = reindex("update", "products", "--workers", "2", "--batch-size", "4", "--json")

        [report] = json.loads(run.stdout)
        assert (report["deleted"], report["failed"]) == (1, 0)
        assert report["indexed"] >= 20
        assert stored(es, "products", products()[10].pk)["name"].startswith("Renamed ")
        assert stored(es, "products", withdrawn.pk) is None


class TestWhatUpdateRefuses:
    def test_an_alias_not_built_yet(self, catalog, reindex):
        catalog(products=3)

        run = reindex("update", "products", "--since", "1h")

        assert run.exit_code == 2
        assert run.stderr.strip() == "reindex: error: products: not built; run reindex rebuild products first"

    def test_an_alias_on_several_indexes(self, built, reindex, es):
        es.indices.create(index="products-extra")
        es.indices.put_alias(index="products-extra", name="products")

        run = reindex("update", "products")

        assert run.exit_code == 2
        assert "the alias points at 2 indexes" in run.stderr

    def test_a_definition_that_does_not_track_changes(self, catalog, reindex, settings):
        settings.REINDEX = {**settings.REINDEX, "INDEXES": ["tests.definitions.TinyIndex"]}
        catalog(products=3)
        reindex("rebuild", "tiny")

        run = reindex("update", "tiny", "--since", "1h")

        assert run.exit_code == 2
        assert (
            "tiny: changes are not tracked: set updated_field (the model's last-updated field) or define" in run.stderr
        )
        assert run.stderr.strip().endswith("or re-send every row with: update tiny --all")
        assert reindex("update", "tiny", "--all").exit_code == 0

    def test_with_no_name_it_updates_the_aliases_that_track_changes(self, catalog, reindex, settings):
        settings.REINDEX = {**settings.REINDEX, "INDEXES": ["tests.definitions.TinyIndex"]}
        catalog(products=3)
        reindex("rebuild")

        run = reindex("update", "--json")

        assert run.exit_code == 0, run.stderr
        assert [r["alias"] for r in json.loads(run.stdout)] == ["categories", "products"]

    @pytest.mark.parametrize("command", [["rebuild"], ["update", "--since", "1h"], ["sweep"], ["verify"]])
    def test_a_definition_with_its_own_ids_must_say_how_to_go_back(self, catalog, reindex, es, settings, command):
        """Its catch-up, update's deletes, sweep and verify go from a document to its row and back."""
        settings.REINDEX = {**settings.REINDEX, "INDEXES": ["tests.definitions.SkuIdIndex"]}
        catalog(products=3)
        es.indices.create(index="skus")  # built once by other means

        run = reindex(command[0], "skus", *command[1:])

        assert run.exit_code == 2
        assert "skus: get_id() is overridden, so pk_from_id() and id_from_pk() must be too" in run.stderr

    def test_a_locked_alias_is_skipped_with_exit_3(self, built, reindex, es):
        hold_lock_as(es, "products", "web2", 4242, age=5)

        run = reindex("update", "products")
        quiet = reindex("-q", "update", "products")

        assert run.exit_code == 3
        assert "products: skipped: locked by web2:4242" in run.stderr
        assert (quiet.exit_code, quiet.stderr) == (3, "")

    def test_too_many_failed_rows_leave_the_watermark_where_it_was(self, catalog, reindex, es, settings):
        settings.REINDEX = {**settings.REINDEX, "INDEXES": ["tests.definitions.TrackedPoisonIndex"]}
        catalog(products=5)
        assert reindex("rebuild", "poison").exit_code == 0
        before = read_watermark(es, "poison")
        product = products()[2]
        product.name = "POISON pill"
        product.save()

        run = reindex("update", "poison", "--json")

        assert run.exit_code == 1
        [report] = json.loads(run.stdout)
        assert report["failed"] == 1 and report["failures"][0]["id"] == str(product.pk)
        assert "the watermark was not moved" in run.stderr
        assert read_watermark(es, "poison") == before


class TestWaitingForTheLock:
    """Cron starts the nightly rebuild in the very second it starts the update of every minute."""

    @staticmethod
    def release_later(es: Any, alias: str, seconds: float) -> threading.Timer:
        hold_lock_as(es, alias, "web2", 4242, age=0)
        timer = threading.Timer(seconds, lambda: es.delete(index="reindex-locks", id=alias))
        timer.start()
        return timer

    @pytest.mark.parametrize("command", [["rebuild"], ["update"], ["sweep"]])
    def test_a_run_waits_for_the_lock_with_lock_wait(self, built, reindex, es, command):
        timer = self.release_later(es, "products", 1.5)

        run = reindex(command[0], "products", "--lock-wait", "20")

        timer.join()
        assert run.exit_code == 0, run.stderr

    def test_without_it_the_run_is_skipped_at_once(self, built, reindex, es):
        timer = self.release_later(es, "products", 1.5)

        run = reindex("rebuild", "products")

        timer.join()
        assert run.exit_code == 3 and "skipped: locked by web2:4242" in run.stderr

    def test_a_wait_that_runs_out_is_a_skip(self, built, reindex, es):
        hold_lock_as(es, "products", "web2", 4242, age=0)

        run = reindex("-q", "update", "products", "--lock-wait", "1")

        assert (run.exit_code, run.stderr) == (3, "")

    def test_the_log_says_how_long_a_skipped_run_waited(self, built, reindex, es, tmp_path):
        hold_lock_as(es, "products", "web2", 4242, age=0)
        log = tmp_path / "rebuild.log"

        run = reindex("--log-file", str(log), "rebuild", "products", "--lock-wait", "1")

        assert (run.exit_code, run.stdout, run.stderr) == (3, "", "")
        [line] = log.read_text().splitlines()
        assert re.search(
            r" reindex\[\d+\]: products: skipped after waiting 1s for the lock: locked by web2:4242 ", line
        )


class TestFromPython:
    def test_update_returns_results_and_raises_like_rebuild(self, catalog, es_url, es, settings):
        settings.REINDEX = {**settings.REINDEX, "HOSTS": [es_url]}
        catalog(products=6)
        reindex.rebuild("products")
        products()[0].save()

        [result] = reindex.update("products")
        [again] = reindex.update("products", since=timezone.timedelta(hours=1))

        assert result.indexed >= 1 and result.watermark is not None
        assert again.since_from == "since" and again.changed == 6
        assert json.loads(json.dumps(result.as_dict()))["alias"] == "products"
        hold_lock_as(es, "products", "web2", 4242, age=5)
        with pytest.raises(reindex.Locked):
            reindex.update("products")


class TestTheLog:
    """What ``--log-file`` keeps of each run: a line when it starts, one when it ends, each with one prefix."""

    def test_each_run_logs_its_start_and_its_end(self, built, reindex, tmp_path):
        log = tmp_path / "reindex.log"

        for command in (["rebuild", "products"], ["update", "products", "--since", "1h"], ["sweep", "products"]):
            run = reindex("--log-file", str(log), *command)
            assert (run.exit_code, run.stdout, run.stderr) == (0, "", "")

        lines = [re.fullmatch(r"\S+ \S+ reindex\[\d+\]: (.*)", line)[1] for line in log.read_text().splitlines()]
        rebuild_start, rebuild_end, update_start, update_end, sweep_start, sweep_end = lines
        assert re.fullmatch(r"products: rebuild started: 40 rows into products-\d+", rebuild_start)
        assert rebuild_end.startswith("products: 40 indexed, 0 failed of 40 rows in ")
        assert re.fullmatch(r"products: update started: 40 rows changed since \S+ into products-\d+", update_start)
        assert update_end.startswith("products: 40 changed since ")
        assert re.fullmatch(r"products: sweep started: 40 documents in products-\d+", sweep_start)
        assert sweep_end.startswith("products: ")
