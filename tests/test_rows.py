"""Rows read on the database cursor: the very documents the ORM path builds, byte for byte.

Given the demo's catalog, when a ``values()`` definition is read on the cursor and
again through the ORM's iterator (and, for the products, through model instances),
then every document and every id is the same bytes. Querysets the cursor cannot read
faithfully go through the ORM.
"""

from __future__ import annotations

from typing import Any

import pytest
from catalog.models import Category, Product
from django.db.models import Count, F, Q, Value
from django.db.models.functions import Concat, Upper

from reindex import IndexDefinition, Related
from reindex.database.rows import cursor_batches, cursor_refusal, orm_batches, read_rows
from reindex.definitions.documents import build_batches, iter_batches, loads
from reindex.pipeline.changes import change_batches
from tests.helpers import recorded_sql


def documents(definition: IndexDefinition, batch_size: int = 37, *, cursor: bool = True) -> list[tuple[str, bytes]]:
    """Every ``(id, serialised document)`` of ``definition``, read in batches."""
    definition.cursor_reads = cursor
    batches = iter_batches(definition.get_queryset(), batch_size, cursor=cursor)
    built = build_batches(definition, "products-x", batches, lambda n: None, pytest.fail)
    return [(header["index"]["_id"], body) for actions in built for header, body in actions]


def catalog_with_edge_values(catalog: Any) -> None:
    """The demo's rows, plus values converters must get right: no sellers, a zero price, a long text."""
    from decimal import Decimal

    catalog(products=300, categories=7, sellers=12)
    lonely = Product.objects.order_by("pk")[5]
    lonely.sellers.clear()
    Product.objects.filter(pk=lonely.pk).update(price=Decimal("0.00"), description="é" * 5000, in_stock=False)
    Product.objects.filter(pk__in=Product.objects.order_by("-pk").values("pk")[:3]).update(is_active=False)


@pytest.mark.parametrize(
    "definition_path",
    [
        "benchmarks.definitions.ProductRowsIndex",  # related rows declared
        "benchmarks.definitions.ProductLoadBatchIndex",  # related rows fetched by hand in load_batch()
        "benchmarks.definitions.ProductLightIndex",
    ],
)
def test_the_cursor_path_builds_every_document_of_the_orm_path_byte_for_byte(catalog, definition_path):
    from django.utils.module_loading import import_string

    catalog_with_edge_values(catalog)
    definition = import_string(definition_path)()

    on_cursor = documents(definition, cursor=True)
    through_orm = documents(definition, cursor=False)

    assert len(on_cursor) == 297
    assert on_cursor == through_orm


def test_values_rows_with_related_rows_build_the_documents_of_model_instances(catalog):
    """The recommended large-table definition and the demo's model-instance one agree on every byte."""
    from catalog.indexes import ProductIndex

    from benchmarks.definitions import ProductRowsIndex

    catalog_with_edge_values(catalog)

    assert documents(ProductRowsIndex()) == documents(ProductIndex())


class AnnotatedIndex(IndexDefinition):
    """Values with annotations: an aggregate (GROUP BY), a function, a join through F(), a constant."""

    alias = "tiny"

    def get_queryset(self) -> Any:
        return Product.objects.values("pk", "price", "created_at").annotate(
            offers=Count("sellers"),
            shouting=Upper("name"),
            shelf=F("category__slug"),
            label=Concat("category__name", Value(": "), "name"),
            cheap=Q(price__lt=50),
        )

    def prepare(self, row: dict[str, Any]) -> dict[str, Any]:
        return dict(row)


def test_annotated_values_read_on_the_cursor_are_the_orm_rows(catalog):
    catalog_with_edge_values(catalog)
    queryset = AnnotatedIndex().get_queryset()

    on_cursor = cursor_batches(queryset, 50)

    assert on_cursor is not None
    rows = [row for batch in on_cursor for row in batch]
    assert rows == [row for batch in orm_batches(queryset, 50) for row in batch]
    assert len(rows) == 300 and {type(row["cheap"]) for row in rows} == {bool}
    assert documents(AnnotatedIndex()) == documents(AnnotatedIndex(), cursor=False)


def test_a_keyset_started_past_a_lower_bound_and_capped_reads_the_same_rows(catalog):
    catalog(products=60)
    pks = list(Product.objects.order_by("pk").values_list("pk", flat=True))
    queryset = Product.objects.filter(pk__lte=pks[49]).values("pk", "name", "updated_at")

    on_cursor = cursor_batches(queryset, 7, after=pks[9])

    assert on_cursor is not None
    assert [row for batch in on_cursor for row in batch] == [
        row for batch in orm_batches(queryset, 7, after=pks[9]) for row in batch
    ]


def test_an_update_reads_its_changed_rows_on_the_cursor_and_finds_the_gone_ones(catalog):
    catalog(products=20)
    pks = list(Product.objects.order_by("pk").values_list("pk", flat=True))
    queryset = Product.objects.filter(is_active=True).values("pk", "name", "price")
    Product.objects.filter(pk=pks[3]).update(is_active=False)
    chunk = [pks[1], pks[3], pks[7], pks[-1] + 1000]

    [(rows, gone)] = list(change_batches(queryset, [chunk]))
    [(orm_rows, orm_gone)] = list(change_batches(queryset, [chunk], cursor=False))

    assert rows == orm_rows and [row["pk"] for row in rows] == [pks[1], pks[7]]
    assert gone == orm_gone == [pks[3], pks[-1] + 1000]


def product_values() -> Any:
    return Product.objects.values("pk", "name")


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: product_values().model.objects.all(), "not a values() queryset"),
        (lambda: product_values().model.objects.values_list("pk", "name"), "not a values() queryset (model"),
        (lambda: product_values().distinct(), "distinct()"),
        (lambda: product_values().extra(select={"one": "1"}), "extra()"),
        (lambda: product_values().union(product_values()), "union()"),
        (lambda: product_values()[:10], "sliced"),
    ],
)
def test_querysets_the_cursor_cannot_read_faithfully_go_through_the_orm(catalog, make, reason):
    catalog(products=15)
    queryset = make()

    refusal = cursor_refusal(queryset)

    assert refusal is not None and refusal.startswith(reason)
    assert cursor_batches(queryset, 5) is None
    if reason in ("not a values() queryset", "distinct()", "extra()"):  # the others are no rows a definition reads
        rows = [row for batch in iter_batches(queryset, 5) for row in batch]
        assert len(rows) == 15


def test_a_plain_values_queryset_is_read_on_the_cursor(db):
    assert cursor_refusal(product_values()) is None
    assert cursor_refusal(product_values().filter(name__startswith="a").order_by("-name")) is None


def test_an_empty_filter_reads_no_rows_and_runs_no_query(catalog, django_assert_num_queries):
    catalog(products=5)

    with django_assert_num_queries(0):
        assert read_rows(product_values().filter(pk__in=[])) == []


class CategoryRowsIndex(IndexDefinition):
    """Products with their category attached through a foreign key (``key`` names the row's field)."""

    alias = "tiny"
    related = {
        "shelf": Related(
            Category.objects.values("pk", "slug"),
            by="pk",
            key="category_id",
        )
    }

    def get_queryset(self) -> Any:
        return Product.objects.values("pk", "category_id")

    def prepare(self, row: dict[str, Any]) -> dict[str, Any]:
        [shelf] = row["shelf"]
        return {"category": row["category_id"], "slug": shelf["slug"]}


def test_related_rows_attach_through_a_foreign_key_of_the_row(catalog):
    catalog(products=40, categories=6)
    expected = [
        (str(pk), {"category": category_id, "slug": slug})
        for pk, category_id, slug in Product.objects.order_by("pk").values_list("pk", "category_id", "category__slug")
    ]
    assert [(doc_id, loads(body)) for doc_id, body in documents(CategoryRowsIndex(), 9)] == expected


class SellersOfInstancesIndex(IndexDefinition):
    """Model instances get their related rows as an attribute."""

    alias = "tiny"
    related = {
        "offers": Related(
            Product.sellers.through.objects.order_by("seller_id").values("product_id", "seller_id"),
            by="product_id",
        )
    }

    def get_queryset(self) -> Any:
        return Product.objects.all()

    def prepare(self, product: Any) -> dict[str, Any]:
        return {"sellers": [offer["seller_id"] for offer in product.offers]}


def test_model_instances_get_related_rows_as_an_attribute(catalog):
    catalog(products=25)
    expected = [(str(p.pk), {"sellers": sorted(s.pk for s in p.sellers.all())}) for p in Product.objects.order_by("pk")]
    assert [(doc_id, loads(body)) for doc_id, body in documents(SellersOfInstancesIndex(), 10)] == expected


def test_related_rows_of_keys_spread_over_the_table_are_read_by_key(catalog):
    """An update's batch holds changed rows far apart: one IN query, not the range between them."""
    from benchmarks.definitions import SELLERS

    catalog(products=200)
    pks = list(Product.objects.order_by("pk").values_list("pk", flat=True))
    with recorded_sql() as statements:
        spread = SELLERS.groups([pks[0], pks[100], pks[199]])
        contiguous = SELLERS.groups(pks[10:20])

    assert sorted(spread) == [pks[0], pks[100], pks[199]]
    assert sorted(contiguous) == pks[10:20]
    assert " IN " in statements[0] and ">=" in statements[1], statements


def test_related_rows_without_their_key_field_are_refused_with_a_clear_error(catalog):
    from reindex.errors import ConfigurationError

    catalog(products=5)
    missing = Related(Product.sellers.through.objects.values("seller_id"), by="product_id")

    with pytest.raises(ConfigurationError, match="'product_id' is not among the queryset's values"):
        missing.groups([1, 2, 3])
