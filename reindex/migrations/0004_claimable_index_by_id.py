"""The claimable entries' index ends with ``id``: a claim reads its batch in (available_at, id) order and stops."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("reindex", "0003_admin_pages"),
    ]

    operations = [
        migrations.RemoveIndex(model_name="queueentry", name="reindex_queue_claimable"),
        migrations.AddIndex(
            model_name="queueentry",
            index=models.Index(fields=["alias", "state", "available_at", "id"], name="reindex_queue_claimable"),
        ),
    ]
