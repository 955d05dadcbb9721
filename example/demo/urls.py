"""The demo's pages: the shop's search page."""

from __future__ import annotations

from catalog import views
from django.urls import path

urlpatterns = [
    path("search/", views.search, name="search"),
]
