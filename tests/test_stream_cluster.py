"""The stream's cluster: a replication slot follows the write-ahead log over a Django connection.

``reindex stream`` reads PostgreSQL's log through logical decoding: a slot per alias, read with
the pgoutput plugin (``pg_logical_slot_peek_binary_changes``) and confirmed with
``pg_replication_slot_advance``, all over the site's ordinary database connection. Those tests
run on the private cluster with ``wal_level = logical`` that ``scripts/logical_cluster.py``
starts (``make test-stream``); this one checks that the cluster gives them what they need.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from catalog.models import Category, Product
from django.db import connection, connections

pytestmark = pytest.mark.stream

PUBLICATION = "reindex_test_products"


@pytest.fixture
def slot(transactional_db: Any) -> Iterator[str]:
    """A pgoutput slot over the catalog's products, created and dropped through the Django connection."""
    name = f"reindex_test_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE PUBLICATION {PUBLICATION} FOR TABLE catalog_product")
        cursor.execute("SELECT pg_create_logical_replication_slot(%s, 'pgoutput')", [name])
    yield name
    # A slot holds its database: the test database could not be dropped at the end of the run.
    connections.close_all()
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_drop_replication_slot(%s)", [name])
        cursor.execute(f"DROP PUBLICATION {PUBLICATION}")


def peek(slot: str) -> list[bytes]:
    """The slot's pgoutput messages not confirmed yet, left in the slot."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT data FROM pg_logical_slot_peek_binary_changes(%s, NULL, NULL,"
            " 'proto_version', '1', 'publication_names', %s)",
            [slot, PUBLICATION],
        )
        return [bytes(data) for (data,) in cursor.fetchall()]


def inserts(messages: list[bytes]) -> list[bytes]:
    """pgoutput's Insert messages (their first byte is ``I``)."""
    return [message for message in messages if message[:1] == b"I"]


def slots() -> list[tuple[str, str]]:
    with connection.cursor() as cursor:
        cursor.execute("SELECT slot_name, plugin FROM pg_replication_slots ORDER BY slot_name")
        return list(cursor.fetchall())


def test_the_cluster_decodes_its_log_and_a_slot_survives_a_restart(logical_cluster: Any, slot: str) -> None:
    # Given the stream's cluster, which writes enough to its log to decode it,
    with connection.cursor() as cursor:
        cursor.execute("SHOW wal_level")
        assert cursor.fetchone() == ("logical",)
    assert peek(slot) == []

    # when the site saves a product through the ORM,
    kitchen = Category.objects.create(name="Kitchen", slug="kitchen")
    Product.objects.create(name="Copper kettle", price=Decimal("39.90"), category=kitchen)

    # then the slot holds its insert, row and all.
    (insert,) = inserts(peek(slot))
    assert b"Copper kettle" in insert

    # When the server restarts under the site's connections,
    logical_cluster.restart()
    connections.close_all()

    # then Django reconnects, the slot is still there, and what it held was not lost;
    assert slots() == [(slot, "pgoutput")]
    assert len(inserts(peek(slot))) == 1

    # once confirmed, it is gone from the slot.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_replication_slot_advance(%s, pg_current_wal_lsn())", [slot])
    assert inserts(peek(slot)) == []
