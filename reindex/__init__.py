"""reindex: zero-downtime rebuilds of Django models into Elasticsearch aliases.

The public API (see docs/api.md)::

    import reindex

    [result] = reindex.rebuild("products", keep=1)
    for status in reindex.status():
        print(status.alias, status.live, status.count)
    for product in reindex.search("products", {"match": {"name": "kettle"}}):
        print(product.name, product.search_hit.score)
"""

from __future__ import annotations

from reindex.api import (
    connect,
    definitions,
    diff,
    drain,
    enqueue,
    last_drains,
    load_config,
    migrate,
    plan,
    prune,
    queue_by_hour,
    queue_purge,
    queue_retry,
    queue_status,
    rebuild,
    rebuild_each,
    rollback,
    slot_drop,
    slot_setup,
    slot_status,
    status,
    stream,
    sweep,
    sweep_each,
    triggers_install,
    triggers_remove,
    triggers_status,
    unlock,
    update,
    update_each,
    verify,
)
from reindex.config import Config
from reindex.database.rows import cursor_refusal
from reindex.definitions.definition import IndexDefinition
from reindex.definitions.related import Related
from reindex.errors import (
    BadQuery,
    ConfigurationError,
    ConnectionFailed,
    CursorExpired,
    DatabaseUnavailable,
    Interrupted,
    InvalidCursor,
    Locked,
    LockHeld,
    LockLost,
    NeedsRebuild,
    NoPreviousIndex,
    ReindexError,
    RunFailed,
    SearchUnavailable,
    ServerError,
    ServerUnreachable,
    StreamBusy,
    Superseded,
    TooFewDocuments,
    TooManyErrors,
    UnknownIndexError,
)
from reindex.healthcheck import AliasHealth, HealthReport, health
from reindex.search import CursorPage, SearchHit, SearchResults, search
from reindex.stream.following import StreamResult
from reindex.stream.slots import SlotStatus

__all__ = [
    "AliasHealth",
    "BadQuery",
    "Config",
    "ConfigurationError",
    "ConnectionFailed",
    "CursorExpired",
    "CursorPage",
    "DatabaseUnavailable",
    "HealthReport",
    "IndexDefinition",
    "Interrupted",
    "InvalidCursor",
    "LockHeld",
    "LockLost",
    "Locked",
    "NeedsRebuild",
    "NoPreviousIndex",
    "ReindexError",
    "Related",
    "RunFailed",
    "SearchHit",
    "SearchResults",
    "SearchUnavailable",
    "ServerError",
    "ServerUnreachable",
    "SlotStatus",
    "StreamBusy",
    "StreamResult",
    "Superseded",
    "TooFewDocuments",
    "TooManyErrors",
    "UnknownIndexError",
    "connect",
    "cursor_refusal",
    "definitions",
    "diff",
    "drain",
    "enqueue",
    "health",
    "last_drains",
    "load_config",
    "migrate",
    "plan",
    "prune",
    "queue_by_hour",
    "queue_purge",
    "queue_retry",
    "queue_status",
    "rebuild",
    "rebuild_each",
    "rollback",
    "search",
    "slot_drop",
    "slot_setup",
    "slot_status",
    "status",
    "stream",
    "sweep",
    "sweep_each",
    "triggers_install",
    "triggers_remove",
    "triggers_status",
    "unlock",
    "update",
    "update_each",
    "verify",
]
__version__ = "0.1.0"
