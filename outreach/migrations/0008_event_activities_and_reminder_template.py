from django.db import migrations

# The text the event reminder starts with, until someone edits it on the templates page.
# A copy (migrations are frozen): outreach.services.letters.DEFAULT_TEMPLATES holds the same text.
REMINDER_SUBJECT = "Reminder: {{ event_name }} on {{ event_date }}"
REMINDER_BODY = (
    "Dear {{ provider_name }},\n\n"
    "A reminder that {{ practice_name }} looks forward to seeing you at {{ event_name }} "
    "on {{ event_date }}, at {{ event_place }}.\n\n"
    "If your plans have changed, a quick reply or call lets us know.\n\n"
    "With best regards,\n{{ sender_name }}\n{{ practice_name }}"
)


def move_event_activity_links(apps, schema_editor):
    """An event used to point at its one attendance activity; now each attendance
    activity points at its event."""
    Event = apps.get_model("outreach", "Event")
    Activity = apps.get_model("outreach", "Activity")
    for event_id, activity_id in Event.objects.filter(activity__isnull=False).values_list(
        "pk", "activity_id"
    ):
        Activity.objects.filter(pk=activity_id).update(event_id=event_id)


def add_reminder_template(apps, schema_editor):
    LetterTemplate = apps.get_model("outreach", "LetterTemplate")
    LetterTemplate.objects.get_or_create(
        kind="event_reminder",
        defaults={"subject": REMINDER_SUBJECT, "body": REMINDER_BODY, "delay_business_days": 0},
    )


def remove_reminder_template(apps, schema_editor):
    apps.get_model("outreach", "LetterTemplate").objects.filter(kind="event_reminder").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("outreach", "0007_annual_meetings_event_costs_visit_history"),
    ]

    operations = [
        migrations.RunPython(move_event_activity_links, migrations.RunPython.noop),
        migrations.RunPython(add_reminder_template, remove_reminder_template),
    ]
