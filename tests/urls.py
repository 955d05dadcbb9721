"""The test site's URLs: the admin, and the health endpoint as a site includes it."""

from __future__ import annotations

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("reindex/", include("reindex.urls")),
]
