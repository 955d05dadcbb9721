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

REINDEX = {
    "HOSTS": [os.environ.get("REINDEX_ES_URL", "http://127.0.0.1:9200")],
    "CELERY_APP": "demo.celery.app",  # benchmarks/scaleout.py: the Celery executor
    # --compress: gzip every request body, as REINDEX["CLIENT_OPTIONS"] can ask of the client.
    "CLIENT_OPTIONS": {"http_compress": True} if os.environ.get("REINDEX_BENCH_COMPRESS") else {},
}

# benchmarks/scaleout.py starts Celery workers with these settings.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = "cache+memory://"  # the Celery executor needs no result backend
CELERY_WORKER_PREFETCH_MULTIPLIER = 1

if os.environ.get("REINDEX_BENCH_DEDSL"):
    from reindex.server.connection import PlainJsonTransport

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


class _QueryCount:
    """SQL queries run by this process, appended to the log file when it exits."""

    def __init__(self) -> None:
        self.queries = 0
        self.written = False
        atexit.register(self.dump)  # the benchmarked process
        self.watch_worker()
        multiprocessing.util.register_after_fork(self, _QueryCount.after_fork)

    def counter(self, execute, sql, params, many, context):  # type: ignore[no-untyped-def]
        self.queries += 1
        return execute(sql, params, many, context)

    def on_connect(self, sender, connection, **kwargs):  # type: ignore[no-untyped-def]
        if self.counter not in connection.execute_wrappers:
            connection.execute_wrappers.append(self.counter)

    def watch_worker(self) -> None:
        multiprocessing.util.Finalize(self, self.dump, exitpriority=100)  # pool workers skip atexit

    def after_fork(self) -> None:
        """A forked worker counts its own queries (it inherits the parent's count and loses its finalizers)."""
        self.queries, self.written = 0, False
        self.watch_worker()

    def dump(self) -> None:
        if self.written:
            return  # atexit and the finalizer both run in the main process
        self.written = True
        with open(os.environ["REINDEX_BENCH_QUERY_LOG"], "a") as log:
            log.write(f"{self.queries}\n")


def _count_queries() -> None:
    from django.db.backends.signals import connection_created

    connection_created.connect(_QueryCount().on_connect, weak=False)


if os.environ.get("REINDEX_BENCH_QUERY_LOG"):
    _count_queries()
