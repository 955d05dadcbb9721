"""A shop's catalog: products in categories, each offered by a few sellers.

Every model has ``updated_at`` (``auto_now``, indexed), which ``reindex update`` reads
changes by. ``auto_now`` is set by ``save()`` only: a bulk ``queryset.update(...)``
must set it itself (``.update(price=..., updated_at=timezone.now())``), or those rows
are not found until the next rebuild.
"""

from __future__ import annotations

import uuid

from django.db import models
from django.utils import timezone


class Category(models.Model):
    """A shelf of the shop, e.g. "Kitchen & Dining"."""

    name = models.CharField(max_length=100)
    slug = models.SlugField(max_length=100)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    class Meta:
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class Seller(models.Model):
    """A merchant who offers products, in a country (ISO 3166 alpha-2 code)."""

    name = models.CharField(max_length=100)
    country = models.CharField(max_length=2)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    def __str__(self) -> str:
        return self.name


class Product(models.Model):
    """An item for sale."""

    name = models.CharField(max_length=200)
    description = models.TextField(blank=True)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    category = models.ForeignKey(Category, on_delete=models.CASCADE, related_name="products")
    sellers = models.ManyToManyField(Seller, related_name="products")
    sku = models.UUIDField(default=uuid.uuid4)
    in_stock = models.BooleanField(default=True)
    #: False once the product is withdrawn (soft-deleted): it leaves the search index.
    is_active = models.BooleanField(default=True)
    created_at = models.DateTimeField(default=timezone.now)
    updated_at = models.DateTimeField(auto_now=True, db_index=True)

    def __str__(self) -> str:
        return self.name
