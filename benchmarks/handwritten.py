"""A hand-written indexing script, the yardstick for reindex: the DB-API cursor, orjson, one bulk body per batch.

No ORM at all: plain SQL on the database driver's own cursor (one keyset query per
batch, one query for the batch's seller links), the column values converted by hand
to what the ORM gives (on SQLite: UTC for the naive timestamps the driver parses,
booleans, UUIDs from hex, floats for prices),
the documents of ``benchmarks.definitions`` built as dicts, serialised with orjson
into one NDJSON body per batch, and sent with one bulk call from a background
thread. ``tests/test_benchmark.py`` checks that it builds reindex's documents, byte
for byte.
"""

from __future__ import annotations

import datetime
import queue
import threading
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import orjson

PRODUCTS = """
SELECT p.id, p.name, p.description, p.price, p.sku, p.in_stock, p.category_id, c.name, p.created_at, p.updated_at
FROM catalog_product p JOIN catalog_category c ON c.id = p.category_id
WHERE p.is_active AND p.id > {mark} ORDER BY p.id LIMIT {mark}
"""
LINKS = """
SELECT l.product_id, s.id, s.name, s.country
FROM catalog_product_sellers l JOIN catalog_seller s ON s.id = l.seller_id
WHERE l.product_id >= {mark} AND l.product_id <= {mark} ORDER BY l.product_id, l.seller_id
"""


def _float(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    raise TypeError(type(value).__name__)


def documents(batch_size: int, light: bool) -> Iterator[list[tuple[str, bytes]]]:
    """Each batch's ``(id, document)`` pairs, the documents serialised."""
    from django.db import connection

    connection.ensure_connection()
    raw = connection.connection  # the driver's own connection
    sqlite = connection.vendor == "sqlite"
    mark = "?" if sqlite else "%s"
    products, links = PRODUCTS.format(mark=mark), LINKS.format(mark=mark)
    utc = datetime.timezone.utc
    cursor = raw.cursor()
    last = 0
    while True:
        cursor.execute(products, (last, batch_size))
        rows = cursor.fetchall()
        if not rows:
            return
        sellers: dict[int, list[dict[str, Any]]] = {}
        if not light:
            cursor.execute(links, (rows[0][0], rows[-1][0]))
            for product_id, seller_id, name, country in cursor.fetchall():
                sellers.setdefault(product_id, []).append({"id": seller_id, "name": name, "country": country})
        batch = []
        for pk, name, description, price, sku, in_stock, category_id, category, created, updated in rows:
            if sqlite:
                created, updated = created.replace(tzinfo=utc), updated.replace(tzinfo=utc)
                sku, in_stock, price = uuid.UUID(sku), bool(in_stock), float(price)
            if light:
                doc = {
                    "name": name,
                    "price": price,
                    "sku": sku,
                    "in_stock": in_stock,
                    "category": {"id": category_id, "name": category},
                    "created_at": created,
                }
            else:
                doc = {
                    "name": name,
                    "description": description,
                    "price": price,
                    "sku": sku,
                    "in_stock": in_stock,
                    "category": {"id": category_id, "name": category},
                    "sellers": sellers.get(pk, []),
                    "created_at": created,
                    "updated_at": updated,
                }
            batch.append((str(pk), orjson.dumps(doc, default=_float)))
        yield batch
        if len(rows) < batch_size:
            return
        last = rows[-1][0]


def send_bodies(es: Any, index: str, batch_size: int, light: bool) -> int:
    """Index every document into ``index``, one bulk body per batch sent on a background thread."""
    bodies: queue.Queue[bytes | None] = queue.Queue(maxsize=2)
    created = [0]

    def sender() -> None:
        while (body := bodies.get()) is not None:
            created[0] += sum(1 for item in es.bulk(body=body)["items"] if item["index"]["status"] < 300)

    thread = threading.Thread(target=sender)
    thread.start()
    header = b'{"index":{"_index":"%s","_id":"%s"}}\n'
    for batch in documents(batch_size, light):
        bodies.put(b"".join(header % (index.encode(), doc_id.encode()) + doc + b"\n" for doc_id, doc in batch))
    bodies.put(None)
    thread.join()
    return created[0]
