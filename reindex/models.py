"""The change queue's table: one row per (alias, primary key) whose document must be brought up to date.

``reindex.queue.entries`` writes and reads it; it is a model only so that Django's
migrations create it in the site's own database (``python manage.py migrate reindex``).
"""

from __future__ import annotations

from django.db import models

PENDING, CLAIMED, DEAD = "pending", "claimed", "dead"


class QueueEntry(models.Model):
    """A row of an alias whose document is out of date: queued by a save, taken by a drainer."""

    alias = models.CharField(max_length=255)
    #: The primary key of the definition's row, as text.
    object_id = models.CharField(max_length=255)
    #: pending: waiting (from ``available_at``); claimed: a drainer holds it until ``lease_expires``;
    #: dead: failed ``QUEUE_MAX_ATTEMPTS`` times (``reindex queue retry`` puts it back).
    state = models.CharField(max_length=8, default=PENDING)
    attempts = models.PositiveIntegerField(default=0)
    #: Not claimed before this time (the back-off after a failure).
    available_at = models.DateTimeField()
    #: When the first change not yet drained was queued (the lag).
    changed_at = models.DateTimeField()
    claimed_by = models.CharField(max_length=64, null=True, blank=True)
    lease_expires = models.DateTimeField(null=True, blank=True)
    #: Changed again while claimed: the drainer's acknowledgement puts it back instead of deleting it.
    requeued = models.BooleanField(default=False)
    last_error = models.TextField(blank=True, default="")
    #: Sent, unchanged since, to these indexes a rebuild is loading: not sent there again, drained once it swapped.
    held_for = models.CharField(max_length=255, null=True, blank=True)

    class Meta:
        db_table = "reindex_queue"
        verbose_name_plural = "queue entries"
        constraints = [models.UniqueConstraint(fields=["alias", "object_id"], name="reindex_queue_alias_object")]
        # A claim reads the due entries in (available_at, id) order through it and stops at its batch
        # (without ``id`` the database sorted every due entry for each claim). ``state`` is not in it:
        # a claim changes only columns no index holds, so PostgreSQL can write the new row version in
        # place (a HOT update: no index entry written; migration 0005 also leaves room in the pages);
        # a dead entry is due ``reindex.queue.entries.never()``, out of the claim's range.
        indexes = [models.Index(fields=["alias", "available_at", "id"], name="reindex_queue_claimable")]

    def __str__(self) -> str:
        return f"{self.alias}:{self.object_id} ({self.state})"


class IndexHealth(QueueEntry):
    """The admin's "Index health" page (no table of its own: a proxy, for its place and permissions in the admin).

    ``reindex.view_indexhealth`` lets a staff user see the page; ``reindex.queue_rebuild``
    lets them queue a rebuild from it (where a Celery app is set up).
    """

    class Meta:
        proxy = True
        verbose_name = "index health"
        verbose_name_plural = "index health"
        default_permissions = ("view",)
        permissions = [("queue_rebuild", "Can queue a rebuild from the admin")]
