"""Django settings for the test suite: the demo's catalog app on SQLite or PostgreSQL.

``REINDEX_TEST_DB=postgres`` selects PostgreSQL (127.0.0.1:5432, database ``test``),
``REINDEX_TEST_DB=mariadb`` MariaDB (127.0.0.1:3306, root; ``make test-mariadb`` runs the
queue's tests there, where ``SKIP LOCKED`` matters), ``REINDEX_TEST_DB=logical`` the private
PostgreSQL cluster with ``wal_level = logical`` that ``scripts/logical_cluster.py`` started on
127.0.0.1:``$REINDEX_LOGICAL_PORT`` (``make test-stream`` runs the tests marked ``stream`` there).
Subprocesses started by the tests get ``REINDEX_TEST_DB_NAME`` so they read the
test database that pytest-django created.
"""

from __future__ import annotations

import hashlib
import os
import tempfile

import django
from demo.databases import mariadb, postgres
from demo.settings import INSTALLED_APPS, MIDDLEWARE, TEMPLATES  # noqa: F401 (the demo's apps and pages)
from django.core.exceptions import ImproperlyConfigured

SECRET_KEY = "tests"
# The demo's pages: the search page the example's own tests (example/catalog/tests) open, the admin
# and the health endpoint (tests/test_admin.py, tests/test_health.py, tests/test_browser.py).
ROOT_URLCONF = "demo.urls"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "static/"  # the admin's CSS, served by the browser test's live server

_name_override = os.environ.get("REINDEX_TEST_DB_NAME")
_checkout = hashlib.sha1(os.path.dirname(os.path.dirname(os.path.abspath(__file__))).encode()).hexdigest()[:8]
if os.environ.get("REINDEX_TEST_DB", "sqlite") == "postgres":
    DATABASES = {
        "default": postgres(
            _name_override or os.environ.get("PGDATABASE", "test"),
            # One test database per checkout: suites of two checkouts may run at once.
            TEST={"NAME": os.environ.get("REINDEX_TEST_PG_TEST_NAME", f"reindex_tests_{_checkout}")},
        )
    }
elif os.environ.get("REINDEX_TEST_DB") == "logical":
    if not os.environ.get("REINDEX_LOGICAL_PORT"):
        raise ImproperlyConfigured(
            "REINDEX_TEST_DB=logical needs the cluster's REINDEX_LOGICAL_PORT: "
            "run the tests under `python scripts/logical_cluster.py run -- ...` (make test-stream)"
        )
    # The cluster is the run's own: pytest-django creates its test database (test_test) there.
    DATABASES = {
        "default": postgres(
            _name_override or "test", HOST="127.0.0.1", PORT=os.environ["REINDEX_LOGICAL_PORT"], USER="postgres"
        )
    }
elif os.environ.get("REINDEX_TEST_DB") == "mariadb":
    _test_name = os.environ.get("REINDEX_TEST_MARIADB_TEST_NAME", f"reindex_tests_{_checkout}")
    DATABASES = {
        "default": mariadb(
            _name_override or os.environ.get("MYSQL_DATABASE", "test"),
            TEST={"NAME": _test_name, "CHARSET": "utf8mb4"},
        )
    }
else:
    _path = os.path.join(tempfile.gettempdir(), f"reindex-tests-{os.getpid()}.sqlite3")
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": _name_override or _path,
            # A file, not :memory:, so that subprocesses can read what a test wrote.
            "TEST": {"NAME": _name_override or _path},
            # Several processes write at once in the freshness and queue tests: wait for the lock, and take it
            # when a transaction begins (a transaction that read, then met another's write, would fail at once).
            "OPTIONS": {"timeout": 30, **({"transaction_mode": "IMMEDIATE"} if django.VERSION >= (5, 1) else {})},
        }
    }

REINDEX = {
    "HOSTS": ["http://127.0.0.1:9"],  # tests always pass --es-url or $REINDEX_ES_URL
    # Extra definitions (e.g. ones that fail on purpose) for subprocess runs.
    "INDEXES": [p for p in os.environ.get("REINDEX_TEST_INDEXES", "").split(",") if p],
    # Fault tests shorten the lock's time to live so that a killed run's lock goes stale soon.
    "LOCK_TTL": float(os.environ.get("REINDEX_TEST_LOCK_TTL", "300")),
    # --executor celery: the app that sends the range tasks (a site following Celery's
    # Django guide imports it from its project package and needs no setting).
    "CELERY_APP": "demo.celery.app",
    # Resume tests split a few hundred rows into several ranges.
    "RANGE_SIZE": int(os.environ.get("REINDEX_TEST_RANGE_SIZE", "100000")),
    # The freshness tests read back a few seconds, not a minute, so that their catch-ups stay short.
    "UPDATE_OVERLAP": float(os.environ.get("REINDEX_TEST_UPDATE_OVERLAP", "60")),
    # The queue's kill -9 test shortens the lease so that the killed drainer's batch comes back soon.
    "QUEUE_LEASE": float(os.environ.get("REINDEX_TEST_QUEUE_LEASE", "300")),
    # The drain's signal test holds a send in a long back-off between two tries of a rejected item.
    **{
        name: float(os.environ["REINDEX_TEST_RETRY_BACKOFF"])
        for name in ("RETRY_BACKOFF", "RETRY_BACKOFF_MAX")
        if os.environ.get("REINDEX_TEST_RETRY_BACKOFF")
    },
}
# The stream's fault tests: a writer whose saves queue nothing (what reaches the index came through
# the log), and a poison row dead after two attempts, retried at once.
if os.environ.get("REINDEX_TEST_QUEUE_CAPTURE") == "0":
    REINDEX["QUEUE_CAPTURE"] = False
if os.environ.get("REINDEX_TEST_QUEUE_MAX_ATTEMPTS"):
    REINDEX["QUEUE_MAX_ATTEMPTS"] = int(os.environ["REINDEX_TEST_QUEUE_MAX_ATTEMPTS"])
if os.environ.get("REINDEX_TEST_QUEUE_BACKOFF"):
    REINDEX["QUEUE_BACKOFF"] = float(os.environ["REINDEX_TEST_QUEUE_BACKOFF"])

# The Celery tests start real workers; each test uses a queue of its own.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL)
# What the Celery executor asks of a site's workers: one task at a time per process, and
# on Redis a short visibility timeout, so that a task whose whole worker died comes back soon.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 30}
