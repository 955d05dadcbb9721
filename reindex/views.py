"""The health endpoint: ``reindex.health()`` as JSON (or Prometheus text), 200 or 503; never a 500.

Route it with ``include("reindex.urls")`` or on its own::

    path("search-health", reindex.views.health)
"""

from __future__ import annotations

import logging

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

import reindex
from reindex.healthcheck import HealthReport
from reindex.prometheus import exposition

logger = logging.getLogger("reindex.health")


@never_cache
@require_safe
def health(request: HttpRequest) -> HttpResponse:
    """The health of every alias (``?alias=products`` for some): JSON, or ``?format=prometheus``."""
    aliases = request.GET.getlist("alias")
    try:
        report = reindex.health(*aliases)
    except Exception as exc:  # the endpoint's promise: a 503 with a reason, never a 500
        logger.exception("the health check failed")
        first_line = (str(exc).strip().splitlines() or [""])[0]
        report = HealthReport(errors=[f"the health check failed: {type(exc).__name__}: {first_line}"])
    if request.GET.get("format") == "prometheus":
        return HttpResponse(
            exposition(report), status=report.http_status, content_type="text/plain; version=0.0.4; charset=utf-8"
        )
    return JsonResponse(report.as_dict(), status=report.http_status)
