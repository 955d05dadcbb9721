from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("reindex", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="queueentry",
            name="held_for",
            field=models.CharField(blank=True, max_length=255, null=True),
        ),
    ]
