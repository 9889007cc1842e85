"""The REST API's representations. Patient fields are filled only for roles that see
patient details on the pages; everyone else gets the initials and nulls."""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from partners.models import Organization, Provider, ProviderRemoval
from referrals.models import Referral


class OrganizationSerializer(serializers.ModelSerializer[Organization]):
    # Text, not format "email": an office may have none ("").
    email = serializers.CharField(read_only=True, help_text="An email address, or empty.")

    class Meta:
        model = Organization
        fields = (
            "id",
            "name",
            "npi",
            "address_line1",
            "address_line2",
            "city",
            "state",
            "zip_code",
            "phone",
            "fax",
            "email",
            "letters_opt_out",
            "marketing_opt_out",
            "updated_at",
        )
        read_only_fields = fields
        extra_kwargs = {
            "letters_opt_out": {
                "help_text": "The office asked for no letters to any of its partners."
            },
            "marketing_opt_out": {
                "help_text": "The office asked for no newsletters, rekindle notes or event "
                "reminders to any of its partners; the letters about their patients still go."
            },
        }


class PartnerSerializer(serializers.ModelSerializer[Provider]):
    organization = OrganizationSerializer(read_only=True, allow_null=True)
    # Declared, so the schema says what a read-only model field's blank value would not.
    tier = serializers.ChoiceField(
        choices=Provider.Tier.choices,
        allow_blank=True,
        read_only=True,
        help_text="Empty until the partner has been tiered.",
    )
    email = serializers.CharField(read_only=True, help_text="An email address, or empty.")

    class Meta:
        model = Provider
        fields = (
            "id",
            "npi",
            "first_name",
            "last_name",
            "credential",
            "taxonomy_code",
            "specialty",
            "status",
            "tier",
            "health",
            "phone",
            "email",
            "organization",
            "letters_opt_out",
            "marketing_opt_out",
            "updated_at",
        )
        read_only_fields = fields
        extra_kwargs = {
            "letters_opt_out": {
                "help_text": "The partner asked for no letters. Their office may have too "
                "(organization.letters_opt_out): either means none is sent."
            },
            "marketing_opt_out": {
                "help_text": "The partner asked for no newsletters, rekindle notes or event "
                "reminders; the letters about their patients still go. Their office may have "
                "too (organization.marketing_opt_out): either means none is sent."
            },
        }


class PartnerRemovalSerializer(serializers.ModelSerializer[ProviderRemoval]):
    """A partner that is gone: a sync drops its copy of the partner with this id."""

    id = serializers.IntegerField(
        source="provider_id", read_only=True, help_text="The removed partner's id."
    )
    merged_into = serializers.IntegerField(
        read_only=True,
        allow_null=True,
        help_text="For a merge, the id of the partner it became (its referrals and history "
        "are there now); null for a deletion.",
    )

    class Meta:
        model = ProviderRemoval
        fields = ("id", "npi", "removed_at", "reason", "merged_into")
        read_only_fields = fields


class PatientSerializer(serializers.Serializer[Referral]):
    """The patient of a referral: initials for every role; the rest only with
    referrals.view_patient_details (null otherwise)."""

    initials = serializers.CharField(source="patient_initials", read_only=True)
    first_name = serializers.CharField(source="patient_first_name", read_only=True, allow_null=True)
    last_name = serializers.CharField(source="patient_last_name", read_only=True, allow_null=True)
    birth_date = serializers.DateField(source="patient_dob", read_only=True, allow_null=True)
    phone = serializers.CharField(source="patient_phone", read_only=True, allow_null=True)


class ReferralSerializer(serializers.ModelSerializer[Referral]):
    patient = PatientSerializer(source="*", read_only=True)
    reason = serializers.CharField(
        read_only=True,
        allow_null=True,
        help_text="Null without the permission to see patient details.",
    )
    provider = serializers.PrimaryKeyRelatedField(read_only=True, help_text="The partner.")
    duplicate_of = serializers.PrimaryKeyRelatedField(
        read_only=True,
        allow_null=True,
        help_text="The referral this one repeats (it is then cancelled and counted nowhere).",
    )

    class Meta:
        model = Referral
        fields = (
            "id",
            "direction",
            "status",
            "duplicate_of",
            "urgency",
            "channel",
            "provider",
            "patient",
            "reason",
            "received_at",
            "contacted_at",
            "appointment_at",
            "seen_at",
            "closed_at",
            "updated_at",
        )
        read_only_fields = fields

    def to_representation(self, instance: Referral) -> dict[str, Any]:
        data: dict[str, Any] = super().to_representation(instance)
        if not self.context.get("patient_details"):
            data["reason"] = None
            data["patient"] = {
                **{key: None for key in data["patient"]},
                "initials": instance.patient_initials,
            }
        return data
