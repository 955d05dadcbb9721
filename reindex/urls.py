"""The health endpoint, to include in a site's URLconf::

    urlpatterns = [..., path("reindex/", include("reindex.urls"))]  # GET /reindex/health

``GET health`` answers the JSON of ``reindex.health()``: 200 when healthy, 503 otherwise;
``health?format=prometheus`` the same figures as Prometheus text.
"""

from __future__ import annotations

from django.urls import path

from reindex.views import health

app_name = "reindex"
urlpatterns = [path("health", health, name="health")]
