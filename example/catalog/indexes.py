"""The catalog's search indexes: one site, several aliases."""

from __future__ import annotations

from typing import Any

from django.db.models import Count, QuerySet

from catalog.models import Category, Product
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

    def get_queryset(self) -> QuerySet[Product]:
        return Product.objects.select_related("category").prefetch_related("sellers")

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

    def get_queryset(self) -> QuerySet[Category]:
        return Category.objects.annotate(product_count=Count("products"))

    def prepare(self, category: Category) -> dict[str, Any]:
        return {
            "id": category.pk,
            "name": category.name,
            "slug": category.slug,
            "product_count": category.product_count,  # type: ignore[attr-defined]
        }
