"""The Celery tasks of the ``reindex`` app, where ``app.autodiscover_tasks()`` finds them.

Only Celery imports this module. ``load_range_task`` is the Celery executor's (see
``reindex.executors.celery``); ``drain_queue`` drains the change queue from Celery beat,
``follow_stream`` follows the PostgreSQL log for a minute at a time (docs/stream.md);
``rebuild_aliases`` is the rebuild the admin's "Queue a rebuild" sends::

    CELERY_BEAT_SCHEDULE = {"drain-search-queue": {"task": "reindex.drain", "schedule": 60}}
    CELERY_BEAT_SCHEDULE = {"search-stream": {"task": "reindex.stream", "schedule": 60}}
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from reindex.executors.celery import load_range_task

__all__ = ["REBUILD_TASK", "drain_queue", "follow_stream", "load_range_task", "rebuild_aliases"]

#: The name the admin sends a rebuild by (``app.send_task``).
REBUILD_TASK = "reindex.rebuild"


@shared_task(name="reindex.drain")
def drain_queue(*aliases: str, max_seconds: float = 55.0, **overrides: Any) -> list[dict[str, Any]]:
    """One pass over the change queue of ``aliases`` (all when none), at most ``max_seconds``; the ``--json`` reports.

    A batch the server could not take stays queued and shows in its alias's ``error``:
    the next run, a minute later, tries it again.
    """
    import reindex

    results = reindex.drain(*aliases, max_seconds=max_seconds, raise_on_error=False, **overrides)
    return [result.as_dict() for result in results]


@shared_task(name="reindex.stream")
def follow_stream(*aliases: str, max_seconds: float = 55.0, **overrides: Any) -> list[dict[str, Any]]:
    """Follow the replication slots of ``aliases`` (all with ``watch`` when none) for ``max_seconds``; the reports.

    Scheduled every minute by beat, one task follows the log while the next waits: a
    task that starts while another still follows a slot returns at once with that
    alias's report saying so (``skipped: "locked"``), and the slot loses nothing.
    """
    import reindex

    try:
        results = reindex.stream(*aliases, max_seconds=max_seconds, raise_on_error=False, **overrides)
    except reindex.StreamBusy as exc:
        return [{"alias": exc.alias, "skipped": "locked", "error": str(exc)}]
    return [result.as_dict() for result in results]


@shared_task(name=REBUILD_TASK)
def rebuild_aliases(*aliases: str, **overrides: Any) -> list[dict[str, Any]]:
    """Rebuild ``aliases`` (all when none) with ``overrides`` of the settings; the ``--json`` reports.

    A failed or locked alias does not fail the task: its report carries ``error`` (and
    ``skipped: "locked"``), as ``reindex rebuild --json`` prints it.
    """
    import reindex

    results = reindex.rebuild(*aliases, raise_on_error=False, **overrides)
    return [result.as_dict() for result in results]
