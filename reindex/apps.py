from __future__ import annotations

from django.apps import AppConfig


class ReindexConfig(AppConfig):
    """``python manage.py reindex ...``, the change queue's table and its capture, for a project with the app."""

    name = "reindex"
    verbose_name = "reindex"
    #: The queue table's key, whatever the site's DEFAULT_AUTO_FIELD (no migration for the site to make).
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from reindex.capture import install

        install()
