"""Healing the index from the search side: a hit whose row is gone queues its document for the next drain.

Only for definitions whose changes are queued (``watch``), while ``REINDEX["SEARCH_HEAL"]``
and ``REINDEX["QUEUE_CAPTURE"]`` are on. The queue's drainer then deletes the stale
document (its row is gone) or writes it again (its row was filtered out and back)::

    heal(definition, dropped_hits, config)  # -> 3 entries queued
"""

from __future__ import annotations

import logging
from typing import Any

from reindex.config import Config
from reindex.definitions.definition import IndexDefinition
from reindex.queue.entries import enqueue_keys, queue_database
from reindex.search.rows import pk_of

logger = logging.getLogger("reindex.search")


def heals(definition: IndexDefinition, config: Config) -> bool:
    """Whether dropped hits of ``definition`` are queued."""
    return config.search_heal and config.queue_capture and definition.watch is not None


def heal(definition: IndexDefinition, dropped: list[Any], config: Config) -> int:
    """Queue the rows of ``dropped`` hits; return the entries queued (0 when off or on a database error).

    In a savepoint of its own: a failed write (a read-only replica) is logged and the page is served.
    """
    if not dropped or not heals(definition, config):
        return 0
    from django.db import DatabaseError, transaction

    keys = [(definition.alias, pk) for hit in dropped if (pk := pk_of(definition, hit.id)) is not None]
    using = queue_database()
    try:
        with transaction.atomic(using=using):
            return enqueue_keys(keys, using=using)
    except DatabaseError as exc:
        logger.warning("%s: could not queue %d stale documents: %s", definition.alias, len(keys), exc)
        return 0
