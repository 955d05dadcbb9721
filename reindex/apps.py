from __future__ import annotations

from django.apps import AppConfig


class ReindexConfig(AppConfig):
    """Adds ``python manage.py reindex ...`` to a project that installs the app."""

    name = "reindex"
    verbose_name = "reindex"
