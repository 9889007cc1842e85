"""Each office staff member as they stand today becomes the first row of their history, so
the first change after this shows what it changed from (as 0019 did for partners and
offices)."""

from django.db import migrations

BATCH = 2000
STARTED = "Its history began here (the record as it stood)"


def start_history(apps, schema_editor):
    model = apps.get_model("partners", "StaffMember")
    historical = apps.get_model("partners", "HistoricalStaffMember")
    fields = [
        field.attname for field in historical._meta.fields if not field.name.startswith("history_")
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
    dependencies = [("partners", "0022_staff_history")]

    operations = [migrations.RunPython(start_history, migrations.RunPython.noop)]
