"""The referral network: referring offices, their providers and their support staff."""

# Every model is imported here so Django registers it, in this order on purpose: reverse
# relations are listed in registration order, and so are the rows a merge moves.
# isort: off
from partners.models.organizations import (
    US_STATE_HELP,
    Address,
    LettersOptOutChange,
    Organization,
)
from partners.models.providers import (
    OPTED_OUT_OF_LETTERS,
    OPTED_OUT_OF_MARKETING,
    HealthChange,
    PreferredChannel,
    Provider,
    ProviderQuerySet,
    ReferralFigures,
    ReportCadence,
    ThankYouBy,
    TierChange,
)
from partners.models.staff import StaffMember
from partners.models.merges import PartnerMerge
from partners.models.imports import PartnerImport
from partners.models.removals import OrganizationRemoval, ProviderRemoval

# isort: on

__all__ = [
    "OPTED_OUT_OF_LETTERS",
    "OPTED_OUT_OF_MARKETING",
    "US_STATE_HELP",
    "Address",
    "HealthChange",
    "LettersOptOutChange",
    "Organization",
    "OrganizationRemoval",
    "PartnerImport",
    "PartnerMerge",
    "PreferredChannel",
    "Provider",
    "ProviderQuerySet",
    "ProviderRemoval",
    "ReferralFigures",
    "ReportCadence",
    "StaffMember",
    "ThankYouBy",
    "TierChange",
]
