"""Inquiries of inbound referrals closed without the patient seen (after a no-show) stayed
"scheduled" in the funnel; a referral closing now marks its inquiry lost, and this does the
same for those closed before."""

from django.db import migrations
from django.db.models import OuterRef, Subquery


def mark_lost(apps, schema_editor):
    Inquiry = apps.get_model("referrals", "Inquiry")
    Referral = apps.get_model("referrals", "Referral")
    closed = Referral.objects.filter(pk=OuterRef("referral_id"))
    Inquiry.objects.filter(
        referral__status="closed", status__in=["inquiry", "scheduled"]
    ).update(status="lost", lost_at=Subquery(closed.values("closed_at")[:1]))


class Migration(migrations.Migration):
    dependencies = [("referrals", "0011_referral_lost_idx")]

    operations = [migrations.RunPython(mark_lost, migrations.RunPython.noop)]
