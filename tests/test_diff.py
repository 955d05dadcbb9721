"""An operator changes a mapping in code and asks what that means for the live index."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest
from catalog.indexes import ProductIndex
from click.testing import CliRunner

from reindex.cli import cli
from reindex.server import indexes
from reindex.server.drift import drift
from reindex.server.ownership import new_index_meta


def product_definition(change: Callable[[dict[str, Any], dict[str, Any]], None]) -> ProductIndex:
    """ProductIndex as it would be after ``change(settings, mappings)`` is made to its code."""
    settings, mappings = copy.deepcopy(ProductIndex.settings), copy.deepcopy(ProductIndex.mappings)
    change(settings, mappings)
    changed = type("ChangedProductIndex", (ProductIndex,), {"settings": settings, "mappings": mappings})
    return changed()


@pytest.fixture
def change_code(monkeypatch):
    """Change ProductIndex's declared definition for this test, as an edit to the code would."""

    def apply(change: Callable[[dict[str, Any], dict[str, Any]], None]) -> None:
        changed = product_definition(change)
        monkeypatch.setattr(ProductIndex, "settings", changed.settings)
        monkeypatch.setattr(ProductIndex, "mappings", changed.mappings)

    return apply


@pytest.fixture
def built(db, reindex, es) -> str:
    """The products alias built by the tool from the definition in code; its index name."""
    assert reindex("rebuild", "products").exit_code == 0
    [index] = indexes.alias_targets(es, "products")
    return index


def test_an_unchanged_definition_prints_only_the_summary_and_exits_0(built, reindex):
    run = reindex("diff", "products")

    assert run.exit_code == 0, run.stderr
    assert run.stdout.splitlines() == [f"products: no differences ({built})"]
    assert run.stderr == ""


def edit(path: str, value: Any) -> Callable[[dict[str, Any], dict[str, Any]], None]:
    """A code change: set the dotted ``path`` of the mappings (or ``settings.``...) to ``value``; None deletes it."""

    def change(settings: dict[str, Any], mappings: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target = settings if parents and parents[0] == "settings" else mappings
        for key in parents[1:] if target is settings else parents:
            target = target[key]
        if value is None:
            del target[last]
        else:
            target[last] = value

    return change


P, M, S, CH, IP, RB = "properties", "mappings", "settings", "changed", "in-place", "rebuild"
CASES = [
    # (what changed in code, the change, section, path, parameter, kind, consequence)
    ("added field", edit(f"{P}.rating", {"type": "float"}), M, "rating", None, "added", IP),
    (
        "added multi-field",
        edit(f"{P}.description.fields", {"raw": {"type": "keyword"}}),
        "mappings",
        "description.raw",
        None,
        "added",
        "in-place",
    ),
    ("type change", edit(f"{P}.sku.type", "text"), M, "sku", "type", CH, RB),
    ("analyzer change", edit(f"{P}.description.analyzer", "simple"), M, "description", "analyzer", CH, RB),
    ("search analyzer", edit(f"{P}.name.search_analyzer", "standard"), M, "name", "search_analyzer", CH, IP),
    ("removed field", edit(f"{P}.in_stock", None), M, "in_stock", None, "removed", RB),
    ("changed dynamic", edit("dynamic", "false"), M, "", "dynamic", CH, IP),
    ("changed _source", edit("_source", {"enabled": False}), M, "", "_source", CH, RB),
    (
        "changed analysis",
        edit("settings.analysis.analyzer.folded.filter", ["lowercase"]),
        "settings",
        "analysis.analyzer.folded",
        None,
        "changed",
        "rebuild",
    ),
    ("changed shards", edit("settings.number_of_shards", 2), S, "number_of_shards", None, CH, RB),
    ("changed replicas", edit("settings.number_of_replicas", 1), S, "number_of_replicas", None, CH, IP),
    ("nested field change", edit(f"{P}.sellers.{P}.country.type", "text"), M, "sellers.country", "type", CH, RB),
    ("nested field added", edit(f"{P}.sellers.{P}.city", {"type": "keyword"}), M, "sellers.city", None, "added", IP),
    ("object field removed", edit(f"{P}.category.{P}.id", None), M, "category.id", None, "removed", RB),
]  # fmt: skip


@pytest.mark.parametrize(
    "change, section, path, parameter, kind, consequence", [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_each_kind_of_change_is_found_with_its_path_and_consequence(
    built, es, change, section, path, parameter, kind, consequence
):
    [report] = drift(es, product_definition(change))

    assert report.index == built
    [difference] = report.differences
    assert (difference.section, difference.path, difference.parameter) == (section, path, parameter)
    assert (difference.kind, difference.consequence) == (kind, consequence)
    assert difference.dynamic is False


DEFAULTS_SPELLED_OUT = [
    # (the default the code writes out, where, its value)
    ("date format", f"{P}.created_at.format", "strict_date_optional_time||epoch_millis"),
    ("text norms", f"{P}.description.norms", True),
    ("text index_options", f"{P}.description.index_options", "positions"),
    ("keyword index_options", f"{P}.sku.index_options", "docs"),
    ("keyword norms", f"{P}.sku.norms", False),
    ("eager_global_ordinals", f"{P}.sku.eager_global_ordinals", False),
    ("text fielddata", f"{P}.description.fielddata", False),
    ("split_queries_on_whitespace", f"{P}.sku.split_queries_on_whitespace", False),
    ("position_increment_gap", f"{P}.description.position_increment_gap", 100),
    ("keyword ignore_above", f"{P}.name.fields.raw.ignore_above", 2147483647),
    ("numeric coerce", f"{P}.price.coerce", True),
    ("nested include_in_parent", f"{P}.sellers.include_in_parent", False),
]


@pytest.mark.parametrize("path, value", [c[1:] for c in DEFAULTS_SPELLED_OUT], ids=[c[0] for c in DEFAULTS_SPELLED_OUT])
def test_a_definition_that_writes_out_a_default_diffs_clean_after_its_rebuild(db, reindex, change_code, path, value):
    change_code(edit(path, value))
    assert reindex("rebuild", "products").exit_code == 0

    run = reindex("diff", "products")

    assert run.exit_code == 0, run.stdout
    assert run.stdout.startswith("products: no differences")


NOT_DEFAULTS = [
    # (a value other than the default, where, its value): still a difference, of that parameter
    ("text norms off", f"{P}.description.norms", False),
    ("keyword norms on", f"{P}.sku.norms", True),
    ("text index_options docs (keyword's default)", f"{P}.description.index_options", "docs"),
    ("keyword index_options freqs", f"{P}.sku.index_options", "freqs"),
    ("date format", f"{P}.created_at.format", "yyyy-MM-dd"),
    ("eager_global_ordinals on", f"{P}.sku.eager_global_ordinals", True),
    ("position_increment_gap 0", f"{P}.description.position_increment_gap", 0),
    ("keyword ignore_above 256", f"{P}.sku.ignore_above", 256),
]


@pytest.mark.parametrize("path, value", [c[1:] for c in NOT_DEFAULTS], ids=[c[0] for c in NOT_DEFAULTS])
def test_a_value_other_than_the_default_is_still_a_difference(built, reindex, change_code, path, value):
    change_code(edit(path, value))

    run = reindex("diff", "products", "--json")

    assert run.exit_code == 1
    [difference] = json.loads(run.stdout)[0]["differences"]
    assert (difference["path"], difference["parameter"], difference["live"]) == tuple(
        [".".join(path.split(".")[1:-1]), path.split(".")[-1], None]
    )


def test_the_report_groups_differences_and_sums_them_up(built, change_code, reindex):
    change_code(edit(f"{P}.rating", {"type": "float"}))
    change_code(edit(f"{P}.sku.type", "text"))
    change_code(edit(f"{P}.sellers.{P}.country", None))

    run = reindex("diff", "products")

    assert run.exit_code == 1
    lines = run.stdout.splitlines()
    assert lines[0] == f"products ({built}):"
    assert '  + rating: added {"type":"float"}  [in-place]' in lines
    assert "  ~ sku [type]: keyword -> text  [rebuild]" in lines
    assert any(line.startswith("  - sellers.country: removed from the definition") for line in lines)
    assert lines[-1] == "products: 3 differences (1 in-place, 2 need rebuild)"
    assert "\x1b[" not in run.stdout  # no colour off a terminal


def test_colour_only_on_a_terminal(built, change_code, es_url):
    change_code(edit(f"{P}.rating", {"type": "float"}))

    run = CliRunner().invoke(cli, ["--es-url", es_url, "diff", "products"], color=True)

    assert run.exit_code == 1
    assert "\x1b[32m  + rating" in run.stdout


def test_json_gives_the_same_as_data(built, change_code, reindex):
    change_code(edit(f"{P}.name.fields.raw.ignore_above", 256))

    run = reindex("diff", "products", "--json")

    assert run.exit_code == 1
    [report] = json.loads(run.stdout)
    assert report["index"] == built and report["built"] is True
    assert report["differences"] == [
        {
            "section": "mappings",
            "path": "name.raw",
            "parameter": "ignore_above",
            "kind": "changed",
            "declared": "256",
            "live": None,
            "consequence": "in-place",
            "dynamic": False,
        }
    ]
    assert (report["in_place"], report["need_rebuild"]) == (1, 0)


def test_a_field_added_by_dynamic_mapping_is_flagged(db, reindex, es, settings):
    settings.REINDEX = {**settings.REINDEX, "INDEXES": ["tests.definitions.TinyIndex"]}
    assert reindex("rebuild", "tiny").exit_code == 0
    es.index(index="tiny", id="x", document={"name": "widget", "colour": "red"}, refresh=True)

    run = reindex("diff", "tiny", "--json")

    assert run.exit_code == 1
    [report] = json.loads(run.stdout)
    [difference] = report["differences"]
    assert (difference["path"], difference["kind"], difference["dynamic"]) == ("colour", "removed", True)
    assert difference["live"]["type"] == "text"
    assert "colour: not declared, from dynamic mapping" in reindex("diff", "tiny").stdout


def test_an_alias_never_built_is_reported_not_built(db, reindex):
    run = reindex("diff", "products")

    assert run.exit_code == 1
    assert run.stdout.splitlines() == ["products: not built"]
    assert run.stderr == ""


@pytest.mark.parametrize(
    "args, url, message",
    [
        (("diff", "prodcuts"), None, "unknown index prodcuts"),
        (("diff", "products"), "http://127.0.0.1:1", "cannot reach the search server"),
    ],
)
def test_trouble_exits_2(db, reindex, es_url, args, url, message):
    run = reindex(*args, url=url or es_url)

    assert run.exit_code == 2
    assert message in run.stderr
    assert run.stdout == ""


class TestStatusSaysWhetherTheLiveIndexMatchesTheCode:
    def test_built_from_the_code(self, built, reindex):
        run = reindex("status", "products")

        assert "built from the definition in code" in run.stdout.splitlines()[1]  # after the server line
        assert json.loads(reindex("status", "products", "--json").stdout)[0]["matches_code"] is True

    def test_code_changed_since(self, built, change_code, reindex):
        change_code(edit(f"{P}.rating", {"type": "float"}))

        run = reindex("status", "products")

        assert "built from a different definition (see reindex diff)" in run.stdout.splitlines()[1]
        assert json.loads(reindex("status", "products", "--json").stdout)[0]["matches_code"] is False


class TestRebuildDryRun:
    def test_it_prints_the_plan_and_writes_nothing(self, catalog, reindex, es, change_code):
        catalog(products=7)
        assert reindex("rebuild", "products").exit_code == 0
        [before] = indexes.alias_targets(es, "products")
        change_code(edit(f"{P}.sku.type", "text"))

        run = reindex("rebuild", "--dry-run", "products")

        assert run.exit_code == 0, run.stderr
        assert indexes.alias_targets(es, "products") == [before]
        assert sorted(dict(es.indices.get(index="products-*"))) == [before]
        out = run.stdout
        assert "products: would create products-" in out and "from 7 rows" in out
        assert "~ sku [type]: keyword -> text  [rebuild]" in out
        assert f"would delete: {before}" in out

    def test_a_definition_the_server_rejects_fails_the_plan_as_it_would_fail_the_run(
        self, catalog, reindex, es, change_code
    ):
        catalog(products=7)
        assert reindex("rebuild", "products").exit_code == 0
        [before] = indexes.alias_targets(es, "products")
        change_code(edit(f"{P}.created_at.type", "dat"))  # a typo

        dry = reindex("rebuild", "--dry-run", "products")
        real = reindex("rebuild", "products")

        assert (dry.exit_code, real.exit_code) == (2, 2)
        assert "reindex: error: the real run would fail: the server rejected the definition of products-" in dry.stderr
        assert "dat" in dry.stderr
        assert "would delete: nothing" in dry.stdout
        assert sorted(dict(es.indices.get(index="products-*"))) == [before]  # the throw-away index is gone

    def test_the_sanity_guard_is_predicted(self, catalog, reindex, es):
        from catalog.models import Product

        catalog(products=10)
        assert reindex("rebuild", "products").exit_code == 0
        [before] = indexes.alias_targets(es, "products")
        Product.objects.filter(pk__in=Product.objects.order_by("pk").values("pk")[:6]).delete()  # 4 of 10 left

        dry = reindex("rebuild", "--dry-run", "products")
        [plan] = json.loads(reindex("rebuild", "--dry-run", "--json", "products").stdout)
        forced = reindex("rebuild", "--dry-run", "--force", "products")
        real = reindex("rebuild", "products")

        assert (dry.exit_code, real.exit_code, forced.exit_code) == (1, 1, 0)
        assert "would fail: products: the new index holds 4 documents, fewer than 0.5 of the 10" in dry.stdout
        assert "would delete: nothing" in dry.stdout
        assert (plan["rows"], plan["live_count"], plan["exit_status"]) == (4, 10, 1)
        assert f"would delete: {before}" in forced.stdout
        assert indexes.alias_targets(es, "products") == [before]

    def test_before_the_first_build_it_creates_nothing(self, catalog, reindex, es):
        catalog(products=3)

        run = reindex("rebuild", "--dry-run", "--json")

        assert run.exit_code == 0, run.stderr
        plans = {p["alias"]: p for p in json.loads(run.stdout)}
        assert plans["products"]["rows"] == 3 and plans["categories"]["rows"] == 5
        assert plans["products"]["drift"] == [
            {
                "alias": "products",
                "definition": "catalog.indexes.ProductIndex",
                "built": False,
                "index": None,
                "differences": [],
                "in_place": 0,
                "need_rebuild": 0,
            }
        ]
        assert plans["products"]["delete"] == []
        assert dict(es.indices.get(index="products*,categories*")) == {}

    def test_keep_is_honoured_in_the_plan(self, built, reindex):
        run = reindex("rebuild", "--dry-run", "--keep", "1", "--json", "products")

        [plan] = json.loads(run.stdout)
        assert (plan["keep"], plan["delete"]) == ([built], [])

    def test_the_plan_names_what_the_real_run_then_deletes_and_keeps(self, built, reindex, es):
        assert reindex("rebuild", "--keep", "2", "products").exit_code == 0
        assert reindex("rebuild", "--keep", "2", "products").exit_code == 0
        abandoned = indexes.new_index_name("products")  # a build whose run was killed
        meta = new_index_meta(None, "products", ProductIndex().path, fingerprint="", fields=[])
        es.indices.create(index=abandoned, mappings={"_meta": meta})

        dry = reindex("rebuild", "--dry-run", "--keep", "1", "products")
        [plan] = json.loads(reindex("rebuild", "--dry-run", "--keep", "1", "--json", "products").stdout)
        real = reindex("rebuild", "--keep", "1", "--json", "products")

        assert real.exit_code == 0, real.stderr
        [result] = json.loads(real.stdout)
        assert plan["abandoned"] == result["abandoned_dropped"] == [abandoned]
        assert sorted(plan["delete"]) == sorted(result["dropped"] + result["abandoned_dropped"])
        assert plan["keep"] == result["kept"] and len(plan["keep"]) == 1
        assert f"{abandoned} (abandoned build)" in dry.stdout


class TestMigrate:
    def test_a_new_field_is_added_in_place(self, catalog, reindex, es, change_code):
        catalog(products=4)
        assert reindex("rebuild", "products").exit_code == 0
        [index] = indexes.alias_targets(es, "products")
        change_code(edit(f"{P}.rating", {"type": "float"}))

        run = reindex("migrate", "products")

        assert run.exit_code == 0, run.stderr
        assert run.stdout.splitlines()[0] == f"products: applied 1 in-place change to {index}"
        assert indexes.alias_targets(es, "products") == [index]
        live = es.indices.get_mapping(index=index)[index]["mappings"]
        assert live["properties"]["rating"] == {"type": "float"}
        assert es.count(index="products")["count"] == 4
        assert reindex("diff", "products").exit_code == 0
        assert reindex("migrate", "products").stdout == f"products: nothing to apply to {index}\n"
        assert json.loads(reindex("status", "products", "--json").stdout)[0]["matches_code"] is True

    def test_migrate_says_how_many_documents_predate_a_new_field_and_how_to_fill_them(
        self, catalog, reindex, es, change_code
    ):
        catalog(products=4)
        assert reindex("rebuild", "products").exit_code == 0
        change_code(edit(f"{P}.rating", {"type": "float"}))

        dry = json.loads(reindex("migrate", "products", "--dry-run", "--json").stdout)
        run = reindex("migrate", "products")

        assert dry[0]["documents_to_fill"] == 4
        assert run.stdout.splitlines()[-1] == (
            "products: the 4 documents already indexed predate the change (a new field is missing from them): "
            "send them again with `reindex update products --all` (in place) or `reindex rebuild products`"
        )
        assert es.count(index="products", query={"exists": {"field": "rating"}})["count"] == 0

    def test_update_all_fills_the_field_that_migrate_added(self, catalog, reindex, es, change_code, monkeypatch):
        """The data migration after ``migrate``: the documents get the new field in place."""
        catalog(products=4)
        assert reindex("rebuild", "products").exit_code == 0
        [index] = indexes.alias_targets(es, "products")
        change_code(edit(f"{P}.rating", {"type": "float"}))
        prepare = ProductIndex.prepare
        monkeypatch.setattr(ProductIndex, "prepare", lambda self, product: {**prepare(self, product), "rating": 4.5})
        assert reindex("migrate", "products").exit_code == 0

        run = reindex("update", "products", "--all")

        assert run.exit_code == 0, run.stderr
        es.indices.refresh(index="products")
        assert es.count(index="products", query={"exists": {"field": "rating"}})["count"] == 4
        assert indexes.alias_targets(es, "products") == [index]  # filled in place
        assert reindex("diff", "products").exit_code == 0

    def test_a_settings_change_leaves_nothing_to_fill(self, catalog, reindex, es, change_code):
        catalog(products=4)
        assert reindex("rebuild", "products").exit_code == 0
        change_code(edit(f"{S}.number_of_replicas", 1))

        [result] = json.loads(reindex("migrate", "products", "--json").stdout)

        assert result["documents_to_fill"] == 0 and len(result["applied"]) == 1

    def test_dynamic_settings_are_applied_in_place(self, built, reindex, es, change_code):
        change_code(edit("settings.number_of_replicas", 2))

        assert reindex("migrate", "products").exit_code == 0

        flat = es.indices.get_settings(index=built, flat_settings=True)[built]["settings"]
        assert flat["index.number_of_replicas"] == "2"

    def test_a_type_change_is_refused_and_nothing_is_written(self, built, reindex, es, change_code):
        change_code(edit(f"{P}.rating", {"type": "float"}))
        change_code(edit(f"{P}.sku.type", "text"))
        before = es.indices.get_mapping(index=built)[built]["mappings"]

        run = reindex("migrate", "products")

        assert run.exit_code == 1
        assert "sku [type]: keyword -> text  [rebuild]" in run.stderr
        assert "products: 1 difference needs a rebuild; nothing was applied" in run.stderr
        assert es.indices.get_mapping(index=built)[built]["mappings"] == before

    def test_dry_run_writes_nothing(self, built, reindex, es, change_code):
        change_code(edit(f"{P}.rating", {"type": "float"}))
        before = es.indices.get_mapping(index=built)[built]["mappings"]

        run = reindex("migrate", "products", "--dry-run")

        assert run.exit_code == 0
        assert "products: would apply 1 in-place change" in run.stdout
        assert "rating: added" in run.stdout
        assert es.indices.get_mapping(index=built)[built]["mappings"] == before

    def test_an_alias_never_built_cannot_be_migrated(self, db, reindex):
        run = reindex("migrate", "products")

        assert run.exit_code == 2
        assert "products: not built" in run.stderr
