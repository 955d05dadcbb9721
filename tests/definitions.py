"""Definitions the tests register on purpose: ones that fail for some rows."""

from __future__ import annotations

import os
import time
from typing import Any

from catalog.indexes import ProductIndex

from reindex import IndexDefinition


class PoisonIndex(IndexDefinition):
    """Products, except that a row named ``POISON...`` cannot be built."""

    alias = "poison"
    settings = {"number_of_shards": 1, "number_of_replicas": 0}
    mappings = {"properties": {"name": {"type": "text"}, "price": {"type": "float"}}}

    def get_queryset(self) -> Any:
        from catalog.models import Product

        return Product.objects.all()

    def prepare(self, product: Any) -> dict[str, Any]:
        if product.name.startswith("POISON"):
            raise ValueError(f"cannot index {product.name!r}")
        if product.name.startswith("BADPRICE"):
            return {"name": product.name, "price": "not a number"}  # the server rejects it
        if product.name.startswith("NOTADICT"):
            return [product.name]  # type: ignore[return-value]
        if product.name.startswith("EXIT"):
            raise SystemExit(0)  # code that ends its process quietly
        if product.name.startswith("UNSERIALISABLE"):
            return {"name": product.name, "price": object()}
        return {"name": product.name, "price": product.price}


class StreamedPoisonIndex(PoisonIndex):
    """The same, its own rows followed (``watch = {}``): what ``reindex stream`` needs."""

    watch: dict[Any, Any] = {}


class TrackedPoisonIndex(PoisonIndex):
    """The same, with its changes tracked by ``updated_at``: what ``update`` needs."""

    updated_field = "updated_at"


class TinyIndex(IndexDefinition):
    """Products read through ``values()``: the fast path the README recommends."""

    alias = "tiny"
    mappings = {"properties": {"name": {"type": "keyword"}}}

    def get_queryset(self) -> Any:
        from catalog.models import Product

        return Product.objects.values("pk", "name")

    def prepare(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"name": row["name"]}


class RejectedMappingIndex(IndexDefinition):
    """A mapping no server accepts: the run must fail before it reads a row."""

    alias = "tiny"
    mappings = {"properties": {"name": {"type": "no_such_type"}}}

    def get_queryset(self) -> Any:
        from catalog.models import Product

        return Product.objects.all()

    def prepare(self, product: Any) -> dict[str, Any]:
        raise AssertionError("no row may be read when the server rejects the mapping")


class BatchesIndex(IndexDefinition):
    """Product names; every batch's size, the process that read it and its first pk go to ``$REINDEX_TEST_BATCH_LOG``.

    ``$REINDEX_TEST_BATCH_DELAY`` seconds pass before each batch: a load long enough to interrupt.
    """

    alias = "batches"
    mappings = {"properties": {"name": {"type": "keyword"}}}

    def get_queryset(self) -> Any:
        from catalog.models import Product

        return Product.objects.values("pk", "name")

    def load_batch(self, rows: Any) -> None:
        time.sleep(float(os.environ.get("REINDEX_TEST_BATCH_DELAY", "0")))
        path = os.environ.get("REINDEX_TEST_BATCH_LOG")
        if path:
            with open(path, "a", encoding="utf-8") as log:
                log.write(f"{os.getpid()} {len(rows)} {rows[0]['pk']}\n")

    def prepare(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"name": row["name"]}


class StreamedBatchesIndex(BatchesIndex):
    """The same, its own rows followed (``watch = {}``): a stream whose batches are slow."""

    watch: dict[Any, Any] = {}


class SmallBatchesIndex(BatchesIndex):
    """The same with a batch size of its own."""

    batch_size = 5


class NoPkIndex(IndexDefinition):
    """A values() queryset without "pk": no row can be built, whatever --max-errors says."""

    alias = "tiny"
    mappings = {"properties": {"name": {"type": "keyword"}}}

    def get_queryset(self) -> Any:
        from catalog.models import Product

        return Product.objects.values("name")

    def prepare(self, row: dict[str, Any]) -> dict[str, Any]:
        return {"name": row["name"]}


class SkuIdIndex(IndexDefinition):
    """Products whose document id is their SKU, not their primary key."""

    alias = "skus"
    mappings = {"properties": {"name": {"type": "keyword"}}}
    updated_field = "updated_at"

    def get_queryset(self) -> Any:
        from catalog.models import Product

        return Product.objects.all()

    def get_id(self, product: Any) -> str:
        return str(product.sku)

    def prepare(self, product: Any) -> dict[str, Any]:
        return {"name": product.name}


class PrefixedIdIndex(ProductIndex):
    """The demo's products under ids of their own (``product-42``), with the way back to the row."""

    alias = "prefixed"

    def get_id(self, product: Any) -> str:
        return f"product-{product.pk}"

    def pk_from_id(self, doc_id: str) -> int:
        prefix, _, pk = doc_id.partition("-")
        if prefix != "product":
            raise ValueError(f"not a product's id: {doc_id}")
        return int(pk)

    def id_from_pk(self, pk: Any) -> str:
        return f"product-{pk}"


class PacedProductIndex(ProductIndex):
    """The demo's products, each batch read ``$REINDEX_TEST_BATCH_DELAY`` seconds late: a load that lasts."""

    alias = "paced"
    batch_size = 20

    def load_batch(self, rows: Any) -> None:
        time.sleep(float(os.environ.get("REINDEX_TEST_BATCH_DELAY", "0")))


class MeddledProductIndex(ProductIndex):
    """The demo's products, 10 a batch; while the second batch is read the site writes: it edits a
    product of the first batch, withdraws one, deletes one outright, and adds one."""

    batch_size = 10
    meddled: dict[str, Any]

    def load_batch(self, rows: Any) -> None:
        from catalog.models import Product

        self.batches = getattr(self, "batches", 0) + 1
        if self.batches != 2:
            return
        edited, withdrawn, deleted = Product.objects.order_by("pk")[:3]
        edited.name = "Edited during the load"
        edited.save()
        withdrawn.is_active = False
        withdrawn.save()
        deleted.delete()
        added = Product.objects.create(name="Added during the load", price="1.00", category=edited.category)
        added.sellers.set(edited.sellers.all())
        self.meddled = {"edited": edited.pk, "withdrawn": withdrawn.pk, "deleted": deleted.pk, "added": added.pk}


class QueuedPacedIndex(PacedProductIndex):
    """The paced products without change tracking: only the queue keeps them fresh, a rebuild has no catch-up."""

    updated_field = None
    changed_since = IndexDefinition.changed_since  # type: ignore[assignment]


class ShopIndex(ProductIndex):
    """The demo's products under another alias, watching their sellers and category (``triggers`` tests)."""

    alias = "shop"


class ShopWithoutSellersIndex(ShopIndex):
    """The same alias after a deploy that stopped carrying sellers: it watches the category only."""

    watch = {"catalog.Category": "category"}


class ShopByFunctionIndex(ShopIndex):
    """The same alias, its sellers followed by a function (which no trigger can run)."""

    watch = {
        "catalog.Category": "category",
        "catalog.Seller": lambda sellers: [p for s in sellers for p in s.products.values_list("pk", flat=True)],
    }


class CategorySellersIndex(IndexDefinition):
    """Categories with the countries of the sellers of their products: a two-step lookup to watch."""

    alias = "category_sellers"
    mappings = {"properties": {"countries": {"type": "keyword"}}}
    watch = {"catalog.Seller": "products__sellers"}

    def get_queryset(self) -> Any:
        from catalog.models import Category

        return Category.objects.all()

    def prepare(self, category: Any) -> dict[str, Any]:
        from catalog.models import Seller

        return {
            "countries": sorted(
                set(Seller.objects.filter(products__category=category).values_list("country", flat=True))
            )
        }
