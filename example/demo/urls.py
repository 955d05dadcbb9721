"""The demo's pages: the admin (with reindex's Index health page) and the health endpoint."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("reindex/", include("reindex.urls")),  # GET /reindex/health
]
