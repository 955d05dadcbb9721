"""The catalog's products written for a large table, the way the README recommends.

Same documents as ``catalog.indexes.ProductIndex``, read through ``values()`` (no
model instances) with each batch's sellers fetched in one query by ``load_batch``.
Not in an ``indexes`` module, so the demo site does not register a second alias.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

from catalog.indexes import ProductIndex
from catalog.models import Product

from reindex import IndexDefinition

COLUMNS = ("pk", "name", "description", "price", "sku", "in_stock", "category_id", "category__name")


class ProductRowsIndex(IndexDefinition):
    """Products from ``values()`` rows plus one query per batch for their sellers."""

    alias = "products"
    settings = ProductIndex.settings
    mappings = ProductIndex.mappings

    updated_field = "updated_at"
    changed_since = ProductIndex.changed_since

    def get_queryset(self) -> Any:
        return Product.objects.filter(is_active=True).values(*COLUMNS, "created_at", "updated_at")

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
        return {
            "name": row["name"],
            "description": row["description"],
            "price": row["price"],
            "sku": row["sku"],
            "in_stock": row["in_stock"],
            "category": {"id": row["category_id"], "name": row["category__name"]},
            "sellers": self.sellers.get(row["pk"], []),
            "created_at": row["created_at"],
            "updated_at": row["updated_at"],
        }


STOPWORDS = frozenset(
    ("a", "an", "and", "are", "as", "at", "by", "for", "from", "in", "is", "of", "on", "or", "the", "to")
)


class HeavyProductRowsIndex(ProductRowsIndex):
    """The same rows with the derived fields a real shop adds, built in Python for each document.

    A full-text field over the product, its category and sellers; keywords without stop
    words; prefixes for a search-as-you-type box; a slug; a price band; the sellers'
    countries. About four times the light document's Python work per row, and twice its
    bytes: what makes ``prepare()`` rather than reading and sending the cost.
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
