from __future__ import annotations

from django.apps import AppConfig


class CatalogConfig(AppConfig):
    """Products, their categories and the sellers who offer them."""

    name = "catalog"
    default_auto_field = "django.db.models.BigAutoField"
