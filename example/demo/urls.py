"""The demo serves no pages; Django only needs the module to exist."""

from __future__ import annotations

from django.urls import URLPattern

urlpatterns: list[URLPattern] = []
