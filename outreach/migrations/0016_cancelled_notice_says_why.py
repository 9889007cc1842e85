"""The cancelled notice now says why (referrals 0010 adds the reason, asked for at every
cancellation). A template still holding the first default text gets the new one; one a
manager has edited is left alone (they can add {{ cancel_reason }} themselves)."""

from django.db import migrations

FIRST = (
    "Dear {{ provider_name }},\n\n"
    "Your referral of {{ patient_initials }}, received on {{ referral_date }}, has "
    "been cancelled and closed without a visit to {{ practice_name }}. If your patient "
    "still needs to be seen, please call us or send a new referral and we will "
    "schedule promptly.\n\n"
    "Sincerely,\n{{ sender_name }}\n{{ practice_name }}"
)
SAYS_WHY = (
    "Dear {{ provider_name }},\n\n"
    "Your referral of {{ patient_initials }}, received on {{ referral_date }}, has "
    "been cancelled and closed without a visit to {{ practice_name }}. The reason: "
    "{{ cancel_reason }}\n\n"
    "If your patient still needs to be seen, please call us or send a new referral "
    "and we will schedule promptly.\n\n"
    "Sincerely,\n{{ sender_name }}\n{{ practice_name }}"
)


def forwards(apps, schema_editor):
    LetterTemplate = apps.get_model("outreach", "LetterTemplate")
    LetterTemplate.objects.filter(kind="cancelled", body=FIRST).update(body=SAYS_WHY)


def backwards(apps, schema_editor):
    LetterTemplate = apps.get_model("outreach", "LetterTemplate")
    LetterTemplate.objects.filter(kind="cancelled", body=SAYS_WHY).update(body=FIRST)


class Migration(migrations.Migration):
    dependencies = [
        ("outreach", "0015_letter_on_hold"),
        ("referrals", "0010_referral_cancel_reason"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
