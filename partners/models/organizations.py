"""Referring offices (Organization) and the Address fields they are written with."""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.urls import reverse

from core.npi import validate_npi

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
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            # One organization per type-2 NPI; many organizations have none.
            models.UniqueConstraint(
                fields=["npi"], condition=~Q(npi=""), name="organization_npi_unique"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("partners:organization_detail", args=[self.pk])
