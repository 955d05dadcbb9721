"""The ``reindex`` pages of the Django admin, registered when ``django.contrib.admin`` is installed.

- "Index health" (``overview``): each alias's live index, counts, lock, watermark, queue and
  the health verdict, from ``reindex.health()``; "Queue a rebuild" where Celery is set up.
- "Queue entries" (``entries``): the change queue's entries, with the actions of
  ``reindex queue retry`` and ``reindex queue purge``.

Django's admin finds this module itself (``admin.autodiscover()``); see docs/operations.md.
"""

from __future__ import annotations

from django.contrib import admin

from reindex.admin.entries import QueueEntryAdmin
from reindex.admin.overview import IndexHealthAdmin
from reindex.models import IndexHealth, QueueEntry

admin.site.register(QueueEntry, QueueEntryAdmin)
admin.site.register(IndexHealth, IndexHealthAdmin)
