"""The demo site's Celery app: ``celery -A demo.celery worker`` runs ``catalog.tasks``.

Configured from Django's settings (``CELERY_*``), as Celery's Django guide does it.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")

app = Celery("demo")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
