"""The change queue's entries in the admin: list, filter, search, and retry or purge the entries selected.

The actions call ``reindex.queue_retry()`` and ``reindex.queue_purge()``, the functions of
``reindex queue retry|purge``, narrowed to the rows selected; each asks for confirmation
on Django's intermediate page and leaves an entry in the admin's log.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.text import Truncator

import reindex
from reindex.models import DEAD

#: The admin's log messages of each action.
RETRIED, PURGED = "Retried: made pending again (reindex queue retry)", "Purged (reindex queue purge)"


class QueueEntryAdmin(admin.ModelAdmin):
    """Read-only entries; ``retry`` (the change permission) and ``purge`` (the delete permission) as actions."""

    list_display = ("object_id", "alias", "state", "attempts", "changed_at", "due", "error")
    list_filter = ("alias", "state", "attempts")
    search_fields = ("=object_id",)
    ordering = ("alias", "changed_at")
    actions = ["retry", "purge"]
    list_per_page = 100

    @admin.display(description="due", ordering="available_at")
    def due(self, entry: Any) -> Any:
        """When a drain may take the entry (a dead one never: its stored time is the year 9000)."""
        return "never (dead)" if entry.state == DEAD else entry.available_at

    @admin.display(description="last error")
    def error(self, entry: Any) -> str:
        return Truncator(entry.last_error).chars(120)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # An entry is never edited by hand; the permission only lets the retry action run.
        return obj is None and super().has_change_permission(request)

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # purge deletes through reindex.queue_purge()
        return actions

    @admin.action(description="Retry the selected dead entries", permissions=["change"])
    def retry(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        """Make the selected dead entries pending again: ``reindex.queue_retry(alias, object_ids=...)``."""
        dead = list(queryset.filter(state=DEAD))
        if not confirmed(request):
            return self.confirm(request, queryset, "retry", dead, "Retry")
        done = {}
        for alias, ids in by_alias(dead).items():
            done.update(reindex.queue_retry(alias, object_ids=ids))
        for entry in dead:
            self.log_change(request, entry, RETRIED)
        self.message_user(request, f"{sum(done.values())} dead entries made pending again: {counts(done)}.")
        return None

    @admin.action(description="Purge the selected entries", permissions=["delete"])
    def purge(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        """Delete the selected entries: ``reindex.queue_purge(alias, object_ids=...)``."""
        entries = list(queryset)
        if not confirmed(request):
            return self.confirm(request, queryset, "purge", entries, "Purge")
        self.log_deleted(request, entries)
        done = {}
        for alias, ids in by_alias(entries).items():
            done.update(reindex.queue_purge(alias, object_ids=ids))
        self.message_user(request, f"{sum(done.values())} entries purged: {counts(done)}.", messages.SUCCESS)
        return None

    def log_deleted(self, request: HttpRequest, entries: list[Any]) -> None:
        """One deletion in the admin's log per entry, before it is deleted."""
        if hasattr(self, "log_deletions"):  # Django 5.1 and later
            self.log_deletions(request, self.model.objects.filter(pk__in=[e.pk for e in entries]))
        else:
            for entry in entries:
                self.log_deletion(request, entry, str(entry))

    def confirm(self, request: HttpRequest, queryset: Any, action: str, affected: list[Any], verb: str) -> Any:
        """Django's intermediate page: what the action will do, a button that posts it again with ``post=yes``."""
        context = {
            **self.admin_site.each_context(request),
            "title": f"{verb} queue entries: are you sure?",
            "opts": self.model._meta,
            "action": action,
            "verb": verb,
            "affected": affected,
            "selected": queryset,
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
            "media": self.media,
        }
        return TemplateResponse(request, "admin/reindex/queueentry/confirm_action.html", context)


def confirmed(request: HttpRequest) -> bool:
    return request.POST.get("post") == "yes"


def by_alias(entries: list[Any]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = defaultdict(list)
    for entry in entries:
        grouped[entry.alias].append(entry.object_id)
    return dict(grouped)


def counts(done: dict[str, int]) -> str:
    return ", ".join(f"{alias} {n}" for alias, n in sorted(done.items())) or "none"
