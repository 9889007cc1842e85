"""Support staff of a referring office (StaffMember)."""

from __future__ import annotations

from django.db import models
from simple_history.models import HistoricalRecords

from core.text import strip_invisible_from
from partners.models.organizations import Organization


class StaffMember(models.Model):
    """Office manager, referral coordinator, front desk: the people who actually send the
    referrals, first-class contacts with their own touches and preferences."""

    class Role(models.TextChoices):
        OFFICE_MANAGER = "office_manager", "Office manager"
        REFERRAL_COORDINATOR = "referral_coordinator", "Referral coordinator"
        FRONT_DESK = "front_desk", "Front desk"
        NURSE = "nurse", "Nurse / MA"
        BILLING = "billing", "Billing"
        OTHER = "other", "Other"

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="staff")
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100, blank=True)
    role = models.CharField(max_length=30, choices=Role.choices, default=Role.FRONT_DESK)
    phone = models.CharField(max_length=30, blank=True)
    email = models.EmailField(blank=True)
    birthday = models.DateField(null=True, blank=True)
    preferences = models.CharField(
        max_length=300, blank=True, help_text="e.g. prefers texts; lunch: vegetarian"
    )
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The version an edit form was opened at: a save over a colleague's later change is
    # refused (partners.forms.VersionedModelForm).
    updated_at = models.DateTimeField(auto_now=True)

    # Who changed the person's details, what from and to (partners/history.py): a
    # colleague's email typed wrong sends the office's invitations to a stranger.
    history = HistoricalRecords(excluded_fields=["created_at", "updated_at"])

    class Meta:
        ordering = ["organization__name", "last_name", "first_name"]
        verbose_name = "staff member"

    def __str__(self) -> str:
        return f"{self.display_name} ({self.get_role_display()})"

    def clean(self) -> None:
        # A right-to-left override pasted into a name would draw it backwards in every list.
        strip_invisible_from(self, ("first_name", "last_name"))

    @property
    def display_name(self) -> str:
        return f"{self.first_name} {self.last_name}".strip()
