"""The catalog's Celery tasks: the nightly rebuild of its search aliases.

Scheduled by Celery beat (``CELERY_BEAT_SCHEDULE`` in the demo's settings). A rebuild
that finds the alias locked is being done by another host right now: the task
retries later instead of failing.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

import reindex


@shared_task(autoretry_for=(reindex.Locked,), retry_backoff=60, max_retries=3)
def rebuild_search(*aliases: str, **overrides: Any) -> list[dict[str, Any]]:
    """Rebuild ``aliases`` (all when none), with ``overrides`` of the settings; the ``--json`` reports."""
    return [result.as_dict() for result in reindex.rebuild(*aliases, **overrides)]
