"""The demo's pages: the shop's search page, the admin (with reindex's Index health page), the health endpoint."""

from __future__ import annotations

from catalog import views
from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("search/", views.search, name="search"),
    path("admin/", admin.site.urls),
    path("reindex/", include("reindex.urls")),  # GET /reindex/health
]
