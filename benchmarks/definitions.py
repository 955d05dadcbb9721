"""The catalog's products written for a large table, the way the README recommends.

Same documents as ``catalog.indexes.ProductIndex``, read through ``values()`` (no
model instances) with each batch's sellers fetched in one query (``related``, or by
hand in ``load_batch()``); and a light document without the sellers. Not in an
``indexes`` module, so the demo site does not register a second alias.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from catalog.indexes import ProductIndex
from catalog.models import Product, Seller
from django.db.models import F

from reindex import IndexDefinition

try:
    from reindex import Related
except ImportError:  # the "main" contenders import this module with the reindex of an older checkout
    Related = None  # type: ignore[assignment,misc]

COLUMNS = ("pk", "name", "description", "price", "sku", "in_stock", "category_id", "category__name")


#: Each product's sellers, one query per batch, grouped per product by reindex; each row is
#: the document's ``{"id", "name", "country"}`` (``product_id``, the key, is left out).
SELLERS = Related and Related(
    Seller.objects.values("id", "name", "country", product_id=F("products")).order_by("product_id", "id"),
    by="product_id",
)


class ProductRowsIndex(IndexDefinition):
    """Products from ``values()`` rows, with their sellers declared as related rows (the heavy document)."""

    alias = "products"
    settings = ProductIndex.settings
    mappings = ProductIndex.mappings

    updated_field = "updated_at"
    changed_since = ProductIndex.changed_since
    #: The same changes as the demo's queue or stream (``benchmarks/stream_benchmark.py`` follows its slot).
    watch = ProductIndex.watch
    related = {"sellers": SELLERS}

    def get_queryset(self) -> Any:
        return Product.objects.filter(is_active=True).values(*COLUMNS, "created_at", "updated_at")

    def prepare(self, row: dict[str, Any]) -> dict[str, Any]:
        return product_document(row, row["sellers"])


class ProductOrmReadsIndex(ProductRowsIndex):
    """The same, its rows and related rows read through the ORM's iterator rather than the cursor."""

    cursor_reads = False


class ProductLoadBatchIndex(ProductRowsIndex):
    """The same documents, the sellers fetched and grouped by hand in ``load_batch()`` (the way before ``related``)."""

    related = None

    def load_batch(self, rows: Sequence[dict[str, Any]]) -> None:
        keys = [row["pk"] for row in rows]
        links = Product.sellers.through.objects.all()
        if keys[-1] - keys[0] < 2 * len(keys):  # a rebuild's batch, contiguous: one range scan
            links = links.filter(product_id__gte=keys[0], product_id__lte=keys[-1])
        else:  # an update's changed rows, spread over the table: by key (the range would read it all)
            links = links.filter(product_id__in=keys)
        links = links.order_by("product_id", "seller_id").values_list(
            "product_id", "seller_id", "seller__name", "seller__country"
        )
        self.sellers: dict[int, list[dict[str, Any]]] = defaultdict(list)
        for product_id, seller_id, name, country in links:
            self.sellers[product_id].append({"id": seller_id, "name": name, "country": country})

    def prepare(self, row: dict[str, Any]) -> dict[str, Any]:
        return product_document(row, self.sellers.get(row["pk"], []))


class ProductLightIndex(ProductRowsIndex):
    """The light document: the product's own columns and its category (a join), no sellers."""

    related = None

    def prepare(self, row: dict[str, Any]) -> dict[str, Any]:
        return {
            "name": row["name"],
            "price": row["price"],
            "sku": row["sku"],
            "in_stock": row["in_stock"],
            "category": {"id": row["category_id"], "name": row["category__name"]},
            "created_at": row["created_at"],
        }


def product_document(row: dict[str, Any], sellers: list[dict[str, Any]]) -> dict[str, Any]:
    """The heavy document: the product's columns, its category and its sellers."""
    return {
        "name": row["name"],
        "description": row["description"],
        "price": row["price"],
        "sku": row["sku"],
        "in_stock": row["in_stock"],
        "category": {"id": row["category_id"], "name": row["category__name"]},
        "sellers": sellers,
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


STOPWORDS = frozenset(
    ("a", "an", "and", "are", "as", "at", "by", "for", "from", "in", "is", "of", "on", "or", "the", "to")
)


class DerivedProductRowsIndex(ProductRowsIndex):
    """The same rows with the derived fields a real shop adds, built in Python for each document.

    A full-text field over the product, its category and sellers; keywords without stop
    words; prefixes for a search-as-you-type box; a slug; a price band; the sellers'
    countries. The heavy document's Python work per row several times over, and twice its bytes:
    ``prepare()``, not reading and sending, is the cost.
    """

    mappings = {
        **ProductRowsIndex.mappings,
        "properties": {
            **ProductRowsIndex.mappings["properties"],
            "text": {"type": "text", "analyzer": "folded"},
            "keywords": {"type": "keyword"},
            "prefixes": {"type": "keyword"},
            "slug": {"type": "keyword"},
            "price_band": {"type": "keyword"},
            "countries": {"type": "keyword"},
        },
    }

    def prepare(self, row: dict[str, Any]) -> dict[str, Any]:
        from django.utils.text import slugify

        document = super().prepare(row)
        sellers = document["sellers"]
        words = " ".join([row["name"], row["description"], row["category__name"], *(s["name"] for s in sellers)])
        tokens = [w.strip(".,;:!?()").lower() for w in words.split()]
        price = float(row["price"])
        return {
            **document,
            "text": " ".join(tokens),
            "keywords": sorted({t for t in tokens if t and t not in STOPWORDS}),
            "prefixes": sorted({w[:n] for w in row["name"].lower().split() for n in range(2, len(w) + 1)}),
            "slug": slugify(f"{row['name']} {row['sku']}"),
            "price_band": "low" if price < 20 else "mid" if price < 200 else "high",
            "countries": sorted({s["country"] for s in sellers}),
        }
