"""The catalog's Celery tasks: the nightly rebuild of its search aliases, and the update every minute.

Scheduled by Celery beat (``CELERY_BEAT_SCHEDULE`` in the demo's settings). A rebuild
that finds the alias locked is being done by another host right now: the task
retries later instead of failing. An update that finds it locked is done: the run
that holds the lock (a rebuild's catch-up) covers its rows, and the next update
continues from the watermark.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

import reindex


@shared_task(autoretry_for=(reindex.Locked,), retry_backoff=60, max_retries=3)
def rebuild_search(*aliases: str, **overrides: Any) -> list[dict[str, Any]]:
    """Rebuild ``aliases`` (all when none), with ``overrides`` of the settings; the ``--json`` reports."""
    return [result.as_dict() for result in reindex.rebuild(*aliases, **overrides)]


@shared_task
def update_search(*aliases: str, **overrides: Any) -> list[dict[str, Any]] | str:
    """Re-send the rows changed since the last update or rebuild (all tracked aliases when none)."""
    try:
        return [result.as_dict() for result in reindex.update(*aliases, **overrides)]
    except reindex.Locked:
        return "skipped: another run holds the lock"
