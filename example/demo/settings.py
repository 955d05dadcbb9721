"""Settings for the demo site.

SQLite by default, at ``$DEMO_SQLITE_PATH`` (else ``example/db.sqlite3``).
``DEMO_DB=postgres`` selects PostgreSQL on ``$PGHOST:$PGPORT`` (else 127.0.0.1:5432) as
``$PGUSER`` (else ``postgres``), database ``$DEMO_PG_NAME`` (else ``test``).
"""

from __future__ import annotations

import os
from pathlib import Path

from demo.databases import postgres

BASE_DIR = Path(__file__).resolve().parent.parent

SECRET_KEY = "demo-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
ROOT_URLCONF = "demo.urls"
USE_TZ = True
TIME_ZONE = "UTC"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "reindex",
    "catalog",
]

# The admin, where reindex adds its Index health page and the queue's entries (docs/operations.md),
# and the search page's template (catalog/templates/catalog/search.html).
MIDDLEWARE = [
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ]
        },
    }
]
STATIC_URL = "static/"

if os.environ.get("DEMO_DB") == "postgres":
    DATABASES = {"default": postgres(os.environ.get("DEMO_PG_NAME", "test"))}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("DEMO_SQLITE_PATH", str(BASE_DIR / "db.sqlite3")),
        }
    }

# The CLI's --es-url and $REINDEX_ES_URL take precedence over HOSTS.
REINDEX = {"HOSTS": ["http://127.0.0.1:9200"], "CELERY_APP": "demo.celery.app"}

# Celery (optional: pip install 'reindex[celery]'); `celery -A demo.celery worker --beat`.
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = os.environ.get("CELERY_RESULT_BACKEND", CELERY_BROKER_URL)
# For `rebuild --executor celery`: each worker process takes one range at a time; on Redis,
# a task whose worker machine died is delivered again after the visibility timeout (seconds).
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
CELERY_BEAT_SCHEDULE = {
    "rebuild-search-nightly": {
        "task": "catalog.tasks.rebuild_search",
        "schedule": 24 * 60 * 60,  # or celery.schedules.crontab(hour=3, minute=17)
        "kwargs": {"keep": 1},
    },
    "update-search-every-minute": {
        "task": "catalog.tasks.update_search",
        "schedule": 60,  # or celery.schedules.crontab(): every minute
    },
}
