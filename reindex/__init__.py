"""reindex: zero-downtime rebuilds of Django models into an Elasticsearch alias."""

from __future__ import annotations

from reindex.definitions import IndexDefinition
from reindex.errors import (
    ConfigurationError,
    ConnectionFailed,
    ReindexError,
    RunFailed,
    UnknownIndexError,
)

__all__ = [
    "ConfigurationError",
    "ConnectionFailed",
    "IndexDefinition",
    "ReindexError",
    "RunFailed",
    "UnknownIndexError",
]
__version__ = "0.1.0"
