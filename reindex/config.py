"""Reading the ``REINDEX`` settings dict and booting Django."""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any

from reindex.errors import ConfigurationError

#: Defaults for every key of ``settings.REINDEX``; see the README's configuration reference.
DEFAULTS: dict[str, Any] = {
    "HOSTS": ["http://localhost:9200"],
    "API_KEY": None,
    "BASIC_AUTH": None,
    "CA_CERTS": None,
    "VERIFY_CERTS": True,
    "TIMEOUT": 30,
    "CLIENT_OPTIONS": {},
    "INDEXES": [],
    "AUTODISCOVER": True,
    "BATCH_SIZE": 1000,
    "KEEP": 0,
    "MAX_ERRORS": 0,
    "MAX_RETRIES": 8,
    "RETRY_BACKOFF": 0.5,
    "RETRY_BACKOFF_MAX": 10.0,
    "RETRY_ON_TIMEOUT": True,
    "MIN_RATIO": 0.5,
    "LOCK_TTL": 300,
    "LOCK_INDEX": "reindex-locks",
    "WORKERS": 1,
    "WORKER_START": None,
}

ENV_URL = "REINDEX_ES_URL"
ENV_API_KEY = "REINDEX_ES_API_KEY"


def reindex_settings() -> dict[str, Any]:
    """``settings.REINDEX`` merged over the defaults."""
    from django.conf import settings

    given = getattr(settings, "REINDEX", {}) or {}
    if not isinstance(given, dict):
        raise ConfigurationError("settings.REINDEX must be a dict")
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise ConfigurationError(f"settings.REINDEX has unknown keys: {', '.join(unknown)}")
    merged = dict(DEFAULTS)
    merged.update(given)
    return merged


def setup_django(settings_module: str | None = None, pythonpath: str | None = None) -> None:
    """Import the site's settings and run ``django.setup()``, once.

    Raises ConfigurationError with one line saying what went wrong.
    """
    import django
    from django.apps import apps
    from django.conf import settings

    if pythonpath:
        sys.path.insert(0, os.path.abspath(pythonpath))
    if settings_module:
        os.environ["DJANGO_SETTINGS_MODULE"] = settings_module
    if apps.ready:
        return
    if not settings.configured and not os.environ.get("DJANGO_SETTINGS_MODULE"):
        raise ConfigurationError("no Django settings: pass --settings or set DJANGO_SETTINGS_MODULE")
    module = os.environ.get("DJANGO_SETTINGS_MODULE", "")
    try:
        django.setup()
    except ModuleNotFoundError as exc:
        if exc.name and module.startswith(exc.name):
            raise ConfigurationError(f"cannot import settings module {module!r}") from exc
        raise ConfigurationError(f"cannot set up Django: {_last_line(exc)}") from exc
    except Exception as exc:
        raise ConfigurationError(f"cannot set up Django with {module!r}: {_last_line(exc)}") from exc


def _last_line(exc: BaseException) -> str:
    return traceback.format_exception_only(type(exc), exc)[-1].strip()
