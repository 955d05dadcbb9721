"""Exit 0 when the test PostgreSQL server accepts connections, 1 otherwise."""

from __future__ import annotations

import os
import sys

try:
    import psycopg
except ImportError:
    sys.exit(1)

try:
    psycopg.connect(
        host=os.environ.get("PGHOST", "127.0.0.1"),
        port=os.environ.get("PGPORT", "5432"),
        user=os.environ.get("PGUSER", "postgres"),
        dbname=os.environ.get("PGDATABASE", "test"),
        connect_timeout=3,
    ).close()
except psycopg.Error:
    sys.exit(1)
