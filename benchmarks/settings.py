"""Django settings for the benchmarks: the demo catalog on SQLite or PostgreSQL.

``REINDEX_BENCH_DB=sqlite|postgres`` picks the database (``/tmp/reindex-bench.sqlite3``
or ``reindex_bench`` on 127.0.0.1:5432). When ``REINDEX_BENCH_QUERY_LOG`` names a
file, every process that sets up these settings (workers included) appends the
number of SQL queries it ran to it when it exits.
"""

from __future__ import annotations

import atexit
import multiprocessing.util
import os

from demo.databases import postgres

SECRET_KEY = "benchmarks"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "reindex", "catalog"]

if os.environ.get("REINDEX_BENCH_DB", "sqlite") == "postgres":
    DATABASES = {"default": postgres(os.environ.get("REINDEX_BENCH_PG_NAME", "reindex_bench"))}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("REINDEX_BENCH_SQLITE", "/tmp/reindex-bench.sqlite3"),
        }
    }

REINDEX = {"HOSTS": [os.environ.get("REINDEX_ES_URL", "http://127.0.0.1:9200")]}

if os.environ.get("REINDEX_BENCH_DEDSL"):
    from reindex.connection import PlainJsonTransport

    INSTALLED_APPS += ["django_elasticsearch_dsl", "benchmarks.dedsl_catalog"]
    ELASTICSEARCH_DSL = {
        "default": {
            "hosts": os.environ.get("REINDEX_ES_URL", "http://127.0.0.1:9200"),
            "transport_class": PlainJsonTransport,
            "request_timeout": 60,
        }
    }
    ELASTICSEARCH_DSL_AUTOSYNC = False
    ELASTICSEARCH_DSL_PARALLEL = False


def _count_queries() -> None:
    from django.db.backends.signals import connection_created

    queries = [0]

    def counter(execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        queries[0] += 1
        return execute(sql, params, many, context)

    def on_connect(sender, connection, **kwargs):  # type: ignore[no-untyped-def]
        if counter not in connection.execute_wrappers:
            connection.execute_wrappers.append(counter)

    def dump() -> None:
        if not queries:
            return  # already written (atexit and the finalizer both run in the main process)
        with open(os.environ["REINDEX_BENCH_QUERY_LOG"], "a") as log:
            log.write(f"{queries.pop()}\n")

    connection_created.connect(on_connect, weak=False)
    atexit.register(dump)  # the benchmarked process
    multiprocessing.util.Finalize(None, dump, exitpriority=100)  # pool workers skip atexit


if os.environ.get("REINDEX_BENCH_QUERY_LOG"):
    _count_queries()
