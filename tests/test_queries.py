"""The database side of a rebuild: a constant number of queries per batch, and no query log kept."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection

from reindex.definitions.documents import build_batches, iter_batches
from tests.helpers import recorded_sql


def documents_and_queries(definition: Any, batch_size: int) -> tuple[int, list[str]]:
    """Build every document of ``definition`` in batches; the documents and every SQL statement run."""
    with recorded_sql() as statements:
        batches = iter_batches(definition.get_queryset(), batch_size)
        built = list(build_batches(definition, "products-x", batches, lambda n: None, pytest.fail))
    return sum(len(actions) for actions in built), statements


@pytest.mark.parametrize(
    "definition_path",
    [
        "catalog.indexes.ProductIndex",
        "benchmarks.definitions.ProductRowsIndex",
        "benchmarks.definitions.ProductLoadBatchIndex",
    ],
)
def test_each_batch_costs_the_same_queries_whatever_its_rows_hold(catalog, definition_path):
    """Products with a category (FK) and 1-4 sellers (M2M): one query for the rows, one for the sellers."""
    from django.utils.module_loading import import_string

    definition = import_string(definition_path)()
    catalog(products=95, sellers=30)

    one_docs, one_batch = documents_and_queries(definition, batch_size=100)  # 1 batch of 95
    ten_docs, ten_batches = documents_and_queries(definition, batch_size=10)  # 9 batches of 10, one of 5

    assert one_docs == ten_docs == 95
    assert len(one_batch) == 2
    assert len(ten_batches) == 10 * len(one_batch)
    assert not any("OFFSET" in sql.upper() for sql in ten_batches)


def test_debug_mode_does_not_keep_every_query_in_memory(catalog, settings):
    from catalog.indexes import ProductIndex

    settings.DEBUG = True
    catalog(products=40)

    documents_and_queries(ProductIndex(), batch_size=10)

    assert len(connection.queries) <= 2  # reset after each batch, not 8 and growing


def test_a_worker_range_starts_its_keyset_past_the_lower_bound_with_one_condition(catalog):
    """A range's lower bound is the keyset's first ``pk >``, not a second condition in every query."""
    from catalog.models import Product

    catalog(products=30)
    pks = list(Product.objects.order_by("pk").values_list("pk", flat=True))
    with recorded_sql() as statements:
        batches = list(iter_batches(Product.objects.filter(pk__lte=pks[24]), 4, after=pks[9]))

    assert [row.pk for batch in batches for row in batch] == pks[10:25]
    assert all(sql.count(">") == 1 for sql in statements), statements
