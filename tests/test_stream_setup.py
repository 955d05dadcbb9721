"""What ``reindex slot setup`` and ``reindex stream`` say on a database that cannot have a replication slot.

Runs on SQLite and on the machine's PostgreSQL (``wal_level = replica``, the default):
the stream itself is tested on a cluster of its own (tests/test_stream.py).
"""

from __future__ import annotations

import pytest


def test_slot_setup_says_what_the_database_lacks_and_exits_2(db, reindex):
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SHOW wal_level")
            if cursor.fetchone()[0] == "logical":
                pytest.skip("this server has wal_level = logical")
        expected = (
            "reindex: error: the database 'default' has wal_level = replica: set wal_level = logical"
            " in postgresql.conf (or ALTER SYSTEM SET wal_level = logical) and restart PostgreSQL\n"
        )
    else:
        expected = f"reindex: error: the stream needs PostgreSQL; the database 'default' is {connection.vendor}\n"

    for command in (["slot", "setup", "products"], ["stream", "products", "--once"]):
        run = reindex(*command)
        assert (run.exit_code, run.stderr) == (2, expected), command
