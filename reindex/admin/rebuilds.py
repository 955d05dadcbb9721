"""Queueing a rebuild from the admin: the ``reindex.rebuild`` task sent to the site's Celery app, if it has one.

A rebuild takes hours on a large table: it never runs in a web request. Without Celery
the page says which command to run instead.
"""

from __future__ import annotations

from typing import Any

from reindex.config import Config
from reindex.errors import ConfigurationError


def celery_app_or_none(config: Config) -> Any:
    """The site's Celery app (``REINDEX["CELERY_APP"]``, else Celery's current app if set up), or None."""
    try:
        from reindex.executors.celery import celery_app
    except ImportError:  # Celery is not installed
        return None
    try:
        return celery_app(config)
    except ConfigurationError:
        return None


def queue_rebuild(app: Any, alias: str, config: Config) -> str:
    """Send the ``reindex.rebuild`` task for ``alias`` to ``REINDEX["CELERY_QUEUE"]``; the task's id."""
    from reindex.tasks import REBUILD_TASK

    return str(app.send_task(REBUILD_TASK, args=[alias], queue=config.celery_queue).id)
