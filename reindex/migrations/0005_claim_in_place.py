"""The claim's index leaves ``state`` out and the table's pages keep room, so that a claim is written in place.

A claim changes ``state``, ``claimed_by``, ``lease_expires``, ``attempts`` and
``last_error``: with no index holding any of them, and free room in the row's page
(``fillfactor`` 40 on PostgreSQL), PostgreSQL writes the new row version beside the old
one without touching an index (a HOT update). Dead entries, which the index no longer
tells apart, are due in the year 9000: out of every claim's range.
"""

from django.db import migrations, models


def _never() -> object:
    from django.utils import timezone

    return timezone.now().replace(year=9000, month=1, day=1, hour=0, minute=0, second=0, microsecond=0)


def dead_never_due(apps, schema_editor):  # type: ignore[no-untyped-def]
    entries = apps.get_model("reindex", "QueueEntry").objects.using(schema_editor.connection.alias)
    entries.filter(state="dead").update(available_at=_never())


def dead_due_now(apps, schema_editor):  # type: ignore[no-untyped-def]
    from django.utils import timezone

    entries = apps.get_model("reindex", "QueueEntry").objects.using(schema_editor.connection.alias)
    entries.filter(state="dead").update(available_at=timezone.now())


def room_in_pages(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE reindex_queue SET (fillfactor = 40)")


def full_pages(apps, schema_editor):  # type: ignore[no-untyped-def]
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("ALTER TABLE reindex_queue RESET (fillfactor)")


class Migration(migrations.Migration):
    dependencies = [
        ("reindex", "0004_claimable_index_by_id"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="queueentry", name="reindex_queue_claimable"),
        migrations.AddIndex(
            model_name="queueentry",
            index=models.Index(fields=["alias", "available_at", "id"], name="reindex_queue_claimable"),
        ),
        migrations.RunPython(dead_never_due, dead_due_now),
        migrations.RunPython(room_in_pages, full_pages),
    ]
