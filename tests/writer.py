"""A site's traffic for the freshness tests: a steady stream of writes to the catalog, from a process of its own.

``python -m tests.writer --seconds 3 --rate 40`` (with ``tests.conftest.subprocess_env()``)
inserts products, edits them, withdraws them (the soft delete), deletes the oldest
outright, and renames sellers and categories, each in its own transaction, at
``--rate`` writes a second; then prints one JSON line counting each kind. SIGTERM ends
it early, the same way. ``--deletes-log PATH`` appends ``<pk> <time>`` for each row
deleted outright, the time (``time.time()``) taken once its transaction committed.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import time
from collections import Counter
from decimal import Decimal
from typing import Any

#: Each kind of write and how often it comes, out of 20.
MIX = {"insert": 5, "edit": 6, "withdraw": 3, "delete": 2, "rename_seller": 3, "rename_category": 1}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3)
    parser.add_argument("--rate", type=float, default=40, help="writes per second")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--deletes-log", help="append '<pk> <time after commit>' for each row deleted outright")
    args = parser.parse_args()
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: stopping.append(signum))
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.settings")
    import django

    django.setup()
    rng = random.Random(args.seed)
    kinds = [kind for kind, weight in MIX.items() for _ in range(weight)]
    done: Counter[str] = Counter()
    deadline = time.monotonic() + args.seconds
    due = time.monotonic()
    deletes = open(args.deletes_log, "a", buffering=1) if args.deletes_log else None  # noqa: SIM115
    while due < deadline and not stopping:
        kind = rng.choice(kinds)
        written = write(kind, rng, done[kind])
        if written:
            done[kind] += 1
        if kind == "delete" and written and deletes is not None:
            deletes.write(f"{written} {time.time()!r}\n")
        due += 1 / args.rate
        time.sleep(max(0.0, due - time.monotonic()))
    print(json.dumps(dict(done)))


def write(kind: str, rng: random.Random, n: int) -> Any:
    """One write of ``kind`` in its own transaction: true once done (a deleted row's primary key for a
    delete), False when there was nothing to write to."""
    from catalog.models import Category, Product, Seller
    from django.db import transaction

    with transaction.atomic():
        if kind == "insert":
            product = Product.objects.create(
                name=f"New product {n}", price=Decimal("9.99"), category=Category.objects.order_by("?").first()
            )
            product.sellers.add(*Seller.objects.order_by("?")[: rng.randint(1, 3)])
            return True
        if kind == "rename_seller":
            return rename(Seller.objects.order_by("?").first(), n)
        if kind == "rename_category":
            return rename(Category.objects.order_by("?").first(), n)
        active = Product.objects.filter(is_active=True)
        # The oldest products are retired outright; the others are picked at random.
        product = (active.order_by("pk") if kind == "delete" else active.order_by("?")).first()
        if product is None:
            return False
        if kind == "delete":
            pk = product.pk
            product.delete()
            return pk
        elif kind == "withdraw":
            product.is_active = False
            product.save()
        else:
            product.name, product.price = f"{product.name.split(' #')[0]} #{n}", Decimal(rng.randrange(100, 9999)) / 100
            product.save()
        return True


def rename(row: object, n: int) -> bool:
    if row is None:
        return False
    row.name = f"{row.name.split(' #')[0]} #{n}"  # type: ignore[attr-defined]
    row.save()  # type: ignore[attr-defined]
    return True


if __name__ == "__main__":
    main()
