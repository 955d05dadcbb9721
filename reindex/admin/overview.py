"""The admin's "Index health" page: ``reindex.health()`` per alias, a chart of the queue, "Queue a rebuild".

Staff with ``reindex.view_indexhealth`` see it; ``reindex.queue_rebuild`` adds the button
that sends the ``reindex.rebuild`` task where a Celery app is set up.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db import DatabaseError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.views.decorators.http import require_POST

import reindex
from reindex.admin.rebuilds import celery_app_or_none, queue_rebuild
from reindex.admin.sparkline import sparkline

#: Hours of the queue chart.
CHART_HOURS = 24


class IndexHealthAdmin(admin.ModelAdmin):
    """A page, not a list: the changelist of the ``IndexHealth`` proxy renders the health report."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        rebuild = self.admin_site.admin_view(require_POST(self.rebuild_view))
        return [
            path("rebuild/", rebuild, name="reindex_indexhealth_rebuild"),
            path("", self.admin_site.admin_view(self.changelist_view), name="reindex_indexhealth_changelist"),
        ]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        config = _config_or_none()
        report = reindex.health(config=config)  # with None, the report says what is wrong with the settings
        charts = queue_charts([a.alias for a in report.aliases], config) if config else {}
        can_rebuild = request.user.has_perm("reindex.queue_rebuild")
        context = {
            **self.admin_site.each_context(request),
            "title": "Index health",
            "opts": self.model._meta,
            "report": report,
            "aliases": [(each, charts.get(each.alias)) for each in report.aliases],
            "chart_hours": CHART_HOURS,
            "celery": can_rebuild and config is not None and celery_app_or_none(config) is not None,
            "can_rebuild": can_rebuild,
            "health_json": report.as_dict(),
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/reindex/indexhealth/overview.html", context)

    def rebuild_view(self, request: HttpRequest) -> HttpResponse:
        """Send the ``reindex.rebuild`` task for the alias posted; back to the page with its id."""
        if not request.user.has_perm("reindex.queue_rebuild"):
            raise PermissionDenied
        config = _config_or_none()
        alias = request.POST.get("alias", "")
        known = [d.alias for d in reindex.definitions(config=config)] if config else []
        app = celery_app_or_none(config) if config else None
        if config is None or alias not in known or app is None:
            why = "no such alias, no Celery app, or the settings are wrong"
            messages.error(request, f"cannot queue a rebuild of {alias!r}: {why}")
        else:
            task_id = queue_rebuild(app, alias, config)
            messages.success(
                request,
                f"Rebuild of {alias} queued as Celery task {task_id} (queue {config.celery_queue}); "
                "the lock below shows it once a worker runs it.",
            )
        return HttpResponseRedirect(reverse("admin:reindex_indexhealth_changelist"))


def _config_or_none() -> reindex.Config | None:
    """The site's configuration, or None when its settings are wrong (the health report then says how)."""
    try:
        return reindex.load_config()
    except reindex.ReindexError:
        return None


def queue_charts(aliases: list[str], config: Any) -> dict[str, Any]:
    """Per alias, the sparkline of the entries waiting by the hour queued (none when the table cannot be read)."""
    if not aliases:
        return {}
    try:
        by_hour = reindex.queue_by_hour(*aliases, hours=CHART_HOURS, config=config)
    except (DatabaseError, reindex.ReindexError):
        return {}
    title = f"entries waiting, by the hour their change was queued (last {CHART_HOURS} hours)"
    return {alias: sparkline(counts, title) for alias, counts in by_hour.items() if any(counts)}
