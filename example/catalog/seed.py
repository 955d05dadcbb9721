"""Deterministic catalog rows for the demo, the tests and the benchmarks.

The same arguments on an empty database always give the same rows (apart from
``updated_at``, which Django sets to now)::

    from catalog.seed import generate

    generate(products=100_000, categories=20, sellers=50, flush=True)
"""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import Decimal

from django.db import connection, transaction
from django.db.models import F
from django.utils.text import slugify

from catalog.models import Category, Product, Seller

#: Rows per INSERT; also how many products are held in memory at once.
BATCH_SIZE = 1000

#: created_at falls in the three years before this moment.
EPOCH = datetime(2025, 1, 1, tzinfo=timezone.utc)
SPAN_SECONDS = 3 * 365 * 24 * 3600

CATEGORY_NAMES = [
    "Kitchen & Dining", "Home Décor", "Garden & Outdoor", "Lighting", "Textiles",
    "Tableware", "Café & Tea", "Bakeware", "Furniture", "Storage",
    "Bath", "Stationery", "Toys & Games", "Pet Supplies", "Crafts",
    "Travel", "Fitness", "Audio", "Office", "Kids' Room",
]  # fmt: skip
SELLER_PREFIXES = ["Maison", "Atelier", "Casa", "Haus", "Little", "Northern", "Old Town", "Blue Door"]
SELLER_STEMS = ["Dupré", "Müller", "Linden", "Harbour", "Sønder", "Willow", "Lumière", "Kettle", "Ironwood"]
SELLER_SUFFIXES = ["Goods", "Trading Co.", "Home", "Supply", "& Sons", "Studio"]
COUNTRIES = ["GB", "FR", "DE", "IT", "ES", "NL", "SE", "DK", "US", "CA", "JP", "PT", "CH", "BE", "AT"]

ADJECTIVES = [
    "Rustic", "Compact", "Classic", "Modern", "Vintage", "Handmade", "Sturdy", "Elegant", "Portable",
    "Deluxe", "Everyday", "Nordic", "Provençal", "Artisanal", "Minimal", "Cosy", "Bright", "Bistro",
]  # fmt: skip
MATERIALS = [
    "Oak", "Walnut", "Bamboo", "Linen", "Copper", "Ceramic", "Cast Iron", "Glass",
    "Wool", "Leather", "Stoneware", "Marble", "Enamel", "Rattan", "Steel",
]  # fmt: skip
NOUNS = [
    "Teapot", "Salad Bowl", "Soufflé Dish", "Crème Brûlée Set", "Espresso Cup", "Chopping Board",
    "Table Lamp", "Throw Blanket", "Side Table", "Café Chair", "Wall Clock", "Flower Vase",
    "Pepper Mill", "Bread Bin", "Crêpe Pan", "Fondue Set", "Picnic Basket", "Desk Organiser",
]  # fmt: skip
PRAISES = [
    "built to last for years",
    "finished by hand in a small workshop",
    "as handsome on the table as in the cupboard",
    "light enough to carry from room to room",
    "made in small batches by a family firm",
    "with a soft, matte glaze",
]
SENTENCES = [
    "Perfect for a slow Sunday brunch or a quick café au lait.",
    "Wipe clean with a damp cloth; not dishwasher safe.",
    "Pairs well with our crème-coloured linens.",
    "Ships flat-packed with everything you need.",
    "Each piece varies slightly, which is part of its charm.",
    "Designed in Zürich and made in Portugal.",
    "A naïve, cheerful pattern runs around the rim.",
    "Gift-wrapped on request at no extra cost.",
    "Comes with a two-year guarantee.",
    "Loved by home cooks and professional chefs alike.",
    "Sized for a small flat, generous enough for a family.",
    "The finish deepens gently with age and use.",
]


@dataclass(frozen=True)
class SeedResult:
    """How many rows one ``generate()`` call created."""

    products: int
    categories: int
    sellers: int
    offers: int  # product-seller links
    seconds: float

    def __str__(self) -> str:
        return (
            f"seeded {self.products} products, {self.categories} categories, {self.sellers} sellers "
            f"and {self.offers} product-seller links in {self.seconds:.1f}s"
        )


def generate(
    products: int = 1000,
    categories: int = 12,
    sellers: int = 40,
    seed: int = 42,
    flush: bool = False,
) -> SeedResult:
    """Create catalog rows in one transaction; ``flush=True`` deletes every existing row first.

    Without ``flush`` the rows are added to those already there, drawn from a
    generator seeded with ``seed`` and the number of products present, so adding
    twice does not repeat rows.
    """
    if min(products, categories, sellers) < 0:
        raise ValueError("counts must not be negative")
    if products and not (categories and sellers):
        raise ValueError("products need at least one category and one seller")
    started = time.perf_counter()
    with transaction.atomic():
        if flush:
            delete_all()
        present = Product.objects.count()
        rng = random.Random(seed if not present else f"{seed}+{present}")
        new_categories = create_categories(categories)
        new_sellers = create_sellers(rng, sellers)
        offers = create_products(rng, products, new_categories, new_sellers)
    return SeedResult(products, categories, sellers, offers, time.perf_counter() - started)


def date_back(days: float = 1) -> None:
    """Move every catalog row's ``updated_at`` back by ``days``, as if all were saved then.

    Rows saved within ``UPDATE_OVERLAP`` of a rebuild's start are read again by its
    catch-up and by the next ``update``: freshly seeded rows would all be.
    """
    for model in (Product, Seller, Category):
        model.objects.update(updated_at=F("updated_at") - timedelta(days=days))


def delete_all() -> None:
    """Delete every catalog row, one plain DELETE per table, children first.

    The ORM's ``delete()`` would load every product to cascade; that takes
    seconds on a large table.
    """
    with connection.cursor() as cursor:
        for model in (Product.sellers.through, Product, Seller, Category):
            cursor.execute(f"DELETE FROM {connection.ops.quote_name(model._meta.db_table)}")


def create_categories(count: int) -> list[Category]:
    """``count`` categories; names repeat with a number once the list runs out."""
    rows = []
    for i in range(count):
        name, round_ = CATEGORY_NAMES[i % len(CATEGORY_NAMES)], i // len(CATEGORY_NAMES)
        if round_:
            name = f"{name} {round_ + 1}"
        rows.append(Category(name=name, slug=slugify(name)))
    return Category.objects.bulk_create(rows, batch_size=BATCH_SIZE)


def create_sellers(rng: random.Random, count: int) -> list[Seller]:
    """``count`` sellers with made-up shop names, each in a country."""
    rows = [
        Seller(
            name=f"{rng.choice(SELLER_PREFIXES)} {rng.choice(SELLER_STEMS)} {rng.choice(SELLER_SUFFIXES)}",
            country=rng.choice(COUNTRIES),
        )
        for _ in range(count)
    ]
    return Seller.objects.bulk_create(rows, batch_size=BATCH_SIZE)


def create_products(rng: random.Random, count: int, categories: Sequence[Category], sellers: Sequence[Seller]) -> int:
    """Insert ``count`` products, batch by batch, each offered by 1-4 sellers; return the links made."""
    through = Product.sellers.through
    links = 0
    for size in _batch_sizes(count):
        batch = Product.objects.bulk_create([make_product(rng, categories) for _ in range(size)])
        offers = [
            through(product_id=product.pk, seller_id=seller.pk)
            for product in batch
            for seller in rng.sample(sellers, min(rng.randint(1, 4), len(sellers)))
        ]
        through.objects.bulk_create(offers, batch_size=BATCH_SIZE)
        links += len(offers)
    return links


def make_product(rng: random.Random, categories: Sequence[Category]) -> Product:
    """One unsaved product with a readable name and a description of about 200 characters."""
    adjective, material, noun = rng.choice(ADJECTIVES), rng.choice(MATERIALS), rng.choice(NOUNS)
    return Product(
        name=f"{adjective} {material} {noun}",
        description=describe(rng, adjective, material, noun),
        price=Decimal(rng.randrange(199, 50000)).scaleb(-2),
        category=rng.choice(categories),
        sku=uuid.UUID(int=rng.getrandbits(128), version=4),
        in_stock=rng.random() < 0.85,
        created_at=EPOCH - timedelta(seconds=rng.randrange(SPAN_SECONDS)),
    )


def describe(rng: random.Random, adjective: str, material: str, noun: str) -> str:
    """An opening line about the product, then stock sentences up to about 200 characters."""
    text = f"A {adjective.lower()} {noun.lower()} in {material.lower()}, {rng.choice(PRAISES)}."
    for sentence in rng.sample(SENTENCES, 4):
        if len(text) >= 170:
            break
        text = f"{text} {sentence}"
    return text


def _batch_sizes(total: int) -> Iterator[int]:
    for start in range(0, total, BATCH_SIZE):
        yield min(BATCH_SIZE, total - start)
