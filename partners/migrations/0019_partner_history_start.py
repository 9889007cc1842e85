"""Each partner and office as it stands today becomes the first row of its history, so the
first change after this shows what it changed from."""

from django.db import migrations

BATCH = 2000
STARTED = "Its history began here (the record as it stood)"


def start_history(apps, schema_editor):
    for name in ("Provider", "Organization"):
        model = apps.get_model("partners", name)
        historical = apps.get_model("partners", f"Historical{name}")
        fields = [
            field.attname
            for field in historical._meta.fields
            if not field.name.startswith("history_")
        ]
        rows = []
        for record in model.objects.order_by("pk").iterator(chunk_size=BATCH):
            rows.append(
                historical(
                    **{attname: getattr(record, attname) for attname in fields},
                    history_date=record.updated_at,
                    history_type="+",
                    history_change_reason=STARTED,
                )
            )
            if len(rows) == BATCH:
                historical.objects.bulk_create(rows)
                rows = []
        historical.objects.bulk_create(rows)


class Migration(migrations.Migration):
    dependencies = [("partners", "0018_partner_history")]

    operations = [migrations.RunPython(start_history, migrations.RunPython.noop)]
