"""The catalog's search indexes: one site, several aliases.

Both track their changes, so ``reindex update`` keeps them fresh between rebuilds.
Their documents are denormalised, so each says which rows' documents a change of a
*related* row touches (``changed_since``).
"""

from __future__ import annotations

import datetime
from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet

from catalog.models import Category, Product, Seller
from reindex import IndexDefinition

#: Lowercases and strips accents, so "creme brulee" finds "Crème Brûlée".
FOLDED_ANALYSIS = {
    "analyzer": {
        "folded": {"type": "custom", "tokenizer": "standard", "filter": ["lowercase", "asciifolding"]},
    },
}


class ProductIndex(IndexDefinition):
    """Products with their category and sellers folded in, for the shop's search box."""

    alias = "products"
    settings = {"number_of_shards": 1, "number_of_replicas": 0, "analysis": FOLDED_ANALYSIS}
    mappings = {
        "dynamic": "strict",
        "properties": {
            "name": {"type": "text", "analyzer": "folded", "fields": {"raw": {"type": "keyword"}}},
            "description": {"type": "text", "analyzer": "folded"},
            "price": {"type": "scaled_float", "scaling_factor": 100},
            "sku": {"type": "keyword"},
            "in_stock": {"type": "boolean"},
            "category": {"properties": {"id": {"type": "integer"}, "name": {"type": "keyword"}}},
            "sellers": {
                "type": "nested",
                "properties": {
                    "id": {"type": "integer"},
                    "name": {"type": "keyword"},
                    "country": {"type": "keyword"},
                },
            },
            "created_at": {"type": "date"},
            "updated_at": {"type": "date"},
        },
    }
    updated_field = "updated_at"
    #: Saves queue the products they touch (``reindex drain`` sends them): a product's own,
    #: and every product of a seller or a category saved.
    watch = {Seller: "sellers", Category: "category"}

    def get_queryset(self) -> QuerySet[Product]:
        # Withdrawn products are left out: update deletes their documents. Sellers in a fixed
        # order: the same row must always make the same document (reindex verify compares them).
        sellers = Prefetch("sellers", queryset=Seller.objects.order_by("pk"))
        return Product.objects.filter(is_active=True).select_related("category").prefetch_related(sellers)

    def changed_since(self, since: datetime.datetime) -> Any:
        """Products saved since then, and every product of a category or seller saved since then.

        A union, each part read through its own index on ``updated_at`` (and the
        foreign keys' indexes), so the cost follows the changes, not the table.
        """
        return (
            Product.objects.filter(updated_at__gte=since)
            .values("pk")
            .union(
                Product.objects.filter(category__updated_at__gte=since).values("pk"),
                Product.sellers.through.objects.filter(seller__updated_at__gte=since).values("product_id"),
            )
        )

    def prepare(self, product: Product) -> dict[str, Any]:
        return {
            "name": product.name,
            "description": product.description,
            "price": product.price,
            "sku": product.sku,
            "in_stock": product.in_stock,
            "category": {"id": product.category.pk, "name": product.category.name},
            "sellers": [
                {"id": seller.pk, "name": seller.name, "country": seller.country} for seller in product.sellers.all()
            ],
            "created_at": product.created_at,
            "updated_at": product.updated_at,
        }


class CategoryIndex(IndexDefinition):
    """Categories with how many products each holds, for browsing."""

    alias = "categories"
    settings = {"number_of_shards": 1, "number_of_replicas": 0, "analysis": FOLDED_ANALYSIS}
    mappings = {
        "dynamic": "strict",
        "properties": {
            "id": {"type": "integer"},
            "name": {"type": "text", "analyzer": "folded", "fields": {"raw": {"type": "keyword"}}},
            "slug": {"type": "keyword"},
            "product_count": {"type": "integer"},
        },
    }

    updated_field = "updated_at"
    #: A product saved, moved or deleted changes its category's count.
    watch = {Product: "products"}

    def get_queryset(self) -> QuerySet[Category]:
        return Category.objects.annotate(product_count=Count("products", filter=Q(products__is_active=True)))

    def changed_since(self, since: datetime.datetime) -> Any:
        """Categories saved since then, and the categories of products saved since then.

        Not exact: a product moved out of a category, or deleted outright, changes that
        category's count without a trace here; the nightly rebuild corrects it.
        """
        return (
            Category.objects.filter(updated_at__gte=since)
            .values("pk")
            .union(Product.objects.filter(updated_at__gte=since).values("category_id"))
        )

    def prepare(self, category: Category) -> dict[str, Any]:
        return {
            "id": category.pk,
            "name": category.name,
            "slug": category.slug,
            "product_count": category.product_count,  # type: ignore[attr-defined]
        }
