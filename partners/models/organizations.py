"""Referring offices (Organization) and the Address fields they are written with."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.urls import reverse
from django.utils import timezone
from simple_history.models import HistoricalRecords

from core.npi import validate_npi
from core.text import strip_invisible_from
from partners.models.removals import OrganizationRemoval

US_STATE_HELP = "Two-letter postal code, e.g. NE."


class Address(models.Model):
    address_line1 = models.CharField("address", max_length=200, blank=True)
    address_line2 = models.CharField("address line 2", max_length=200, blank=True)
    city = models.CharField(max_length=100, blank=True)
    state = models.CharField(max_length=2, blank=True, help_text=US_STATE_HELP)
    zip_code = models.CharField("ZIP code", max_length=10, blank=True)

    class Meta:
        abstract = True

    @property
    def address_lines(self) -> list[str]:
        city_line = " ".join(
            part
            for part in (f"{self.city}," if self.city else "", self.state, self.zip_code)
            if part
        )
        return [line for line in (self.address_line1, self.address_line2, city_line) if line]

    @property
    def can_be_mailed(self) -> bool:
        """A street, a city and a ZIP code: enough for the post office to deliver."""
        return bool(self.address_line1 and self.city and self.zip_code)


class OrganizationQuerySet(models.QuerySet["Organization"]):
    def delete(self) -> tuple[int, dict[str, int]]:
        """Delete these offices, leaving an OrganizationRemoval for each in the same
        transaction (the admin's delete action comes here), so FHIR reads answer 410."""
        with transaction.atomic(using=self.db):
            # Locked, so the removals recorded are exactly the rows deleted.
            gone = list(self.select_for_update(of=("self",)).values_list("pk", flat=True))
            now = timezone.now()
            OrganizationRemoval.objects.using(self.db).bulk_create(
                OrganizationRemoval(
                    organization_id=pk, removed_at=now, reason=OrganizationRemoval.Reason.DELETED
                )
                for pk in gone
            )
            return super(OrganizationQuerySet, self.filter(pk__in=gone)).delete()


class Organization(Address):
    """A referring practice or office: where the providers and their staff work."""

    name = models.CharField(max_length=200)
    npi = models.CharField(
        "organization NPI",
        max_length=10,
        blank=True,
        validators=[validate_npi],
        help_text="Optional type-2 (organization) NPI.",
    )
    phone = models.CharField(max_length=30, blank=True)
    fax = models.CharField(
        "designated fax", max_length=30, blank=True, help_text="The fax line for referrals."
    )
    email = models.EmailField(blank=True)
    notes = models.TextField(blank=True)
    # The office's word for all its partners, those who join later included: every letter
    # to one of them checks it beside the partner's own (Provider.letters_opted_out). Set
    # only through organization_set_letters_opt_out, which stamps when and by whom and
    # keeps the history (LettersOptOutChange).
    letters_opt_out = models.BooleanField(
        "office opted out of letters",
        default=False,
        help_text="No automated letters to any partner of this office, now or who joins "
        "later: acknowledgments, notices, thank-yous, cover letters and summaries, "
        "newsletters, rekindle notes and event reminders (as a partner's own opt-out).",
    )
    # "No more newsletters to any of our doctors": as a partner's own opt-out of newsletters
    # and invitations (Provider.marketing_opted_out), for every partner of the office.
    marketing_opt_out = models.BooleanField(
        "office opted out of newsletters and invitations",
        default=False,
        help_text="No newsletters, rekindle notes or event reminders to any partner of this "
        "office, now or who joins later; the letters about their patients still go.",
    )
    letters_opt_out_at = models.DateTimeField(
        "opted out of letters since", null=True, blank=True, editable=False
    )
    letters_opt_out_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        editable=False,
        related_name="+",
        verbose_name="opted out of letters by",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = OrganizationQuerySet.as_manager()
    # Who changed the record, what from and to (partners/history.py). The opt-out's own
    # history (OptOutChange) says when and by whom.
    history = HistoricalRecords(
        excluded_fields=["letters_opt_out_at", "letters_opt_out_by", "created_at", "updated_at"]
    )

    class Meta:
        # The id last: a group's locations often share a name, and a list paged by name
        # alone showed some of them twice and others never.
        ordering = ["name", "pk"]
        constraints = [
            # One organization per type-2 NPI; many organizations have none.
            models.UniqueConstraint(
                fields=["npi"], condition=~Q(npi=""), name="organization_npi_unique"
            ),
            # "Opted out since" is shown wherever the opt-out is: it has a date, and only
            # while it holds.
            models.CheckConstraint(
                condition=Q(letters_opt_out=True, letters_opt_out_at__isnull=False)
                | Q(letters_opt_out=False, letters_opt_out_at__isnull=True),
                name="organization_opt_out_has_date",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("partners:organization_detail", args=[self.pk])

    def delete(
        self,
        using: Any | None = None,
        keep_parents: bool = False,
        *,
        merged_into: Organization | None = None,
    ) -> tuple[int, dict[str, int]]:
        """Delete this office (or, with `merged_into`, finish merging it into that one),
        leaving an OrganizationRemoval in the same transaction."""
        merged = merged_into is not None
        with transaction.atomic(using=using):
            OrganizationRemoval.objects.using(using).create(
                organization_id=self.pk,
                removed_at=timezone.now(),
                reason=(
                    OrganizationRemoval.Reason.MERGED
                    if merged
                    else OrganizationRemoval.Reason.DELETED
                ),
                merged_into=merged_into.pk if merged_into is not None else None,
            )
            return super().delete(using=using, keep_parents=keep_parents)

    def clean(self) -> None:
        # As for partners' names: a right-to-left override would draw the office backwards
        # in every list, and a pasted control character cannot go into a workbook.
        strip_invisible_from(self, ("name", "address_line1", "address_line2", "city"))


class LettersOptOutChange(models.Model):
    """History of an office's opt-out of letters: each time it is set or cleared, by whom
    and when (changed_by is empty when nobody signed in did it, or the user is gone)."""

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="opt_out_changes"
    )
    opted_out = models.BooleanField()
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    changed_at = models.DateTimeField()

    class Meta:
        ordering = ["-changed_at", "-pk"]
        verbose_name = "office opt-out change"

    def __str__(self) -> str:
        verb = "opted out of letters" if self.opted_out else "letters resumed"
        return f"{self.organization_id}: {verb}"
