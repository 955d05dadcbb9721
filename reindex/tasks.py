"""The Celery executor's task, where ``app.autodiscover_tasks()`` looks for it (``"reindex"`` in INSTALLED_APPS).

Only Celery imports this module; see ``reindex.celery_executor``.
"""

from __future__ import annotations

from reindex.celery_executor import load_range_task

__all__ = ["load_range_task"]
