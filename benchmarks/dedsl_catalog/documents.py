"""Products for django-elasticsearch-dsl, the same documents as ``catalog.indexes.ProductIndex``.

Its queryset prefetching is set up (``get_queryset`` with select/prefetch_related),
the way its documentation recommends for related data.
"""

from __future__ import annotations

from typing import Any

from catalog.models import Product
from django_elasticsearch_dsl import Document, fields
from django_elasticsearch_dsl.registries import registry


@registry.register_document
class ProductDocument(Document):
    category = fields.ObjectField(properties={"id": fields.IntegerField(), "name": fields.KeywordField()})
    sellers = fields.NestedField(
        properties={"id": fields.IntegerField(), "name": fields.KeywordField(), "country": fields.KeywordField()}
    )
    price = fields.ScaledFloatField(scaling_factor=100)
    sku = fields.KeywordField()

    class Index:
        name = "products-dedsl"
        settings = {"number_of_shards": 1, "number_of_replicas": 0}

    class Django:
        model = Product
        fields = ["name", "description", "in_stock", "created_at", "updated_at"]
        queryset_pagination = 1000

    def get_queryset(self) -> Any:
        return super().get_queryset().select_related("category").prefetch_related("sellers")

    def prepare_price(self, product: Product) -> float:
        return float(product.price)

    def prepare_sku(self, product: Product) -> str:
        return str(product.sku)
