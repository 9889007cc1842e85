"""Partner workflows beyond a plain form save, one module per resource, re-exported here."""

from partners.services.health import HealthResult, assess_health, providers_assess_health
from partners.services.imports import (
    SYNC_IMPORT_ROWS,
    check_partner_import_mapping,
    partner_import_apply,
    partner_import_start,
    partner_imports_to_redrive,
)
from partners.services.merges import MergeField, MergePreview, partner_merge, partner_merge_preview
from partners.services.offices import organization_set_letters_opt_out
from partners.services.tiers import (
    RetierResult,
    TierVolume,
    classify_tiers,
    provider_set_tier,
    provider_unpin_tier,
    providers_retier,
)

__all__ = [
    "SYNC_IMPORT_ROWS",
    "HealthResult",
    "MergeField",
    "MergePreview",
    "RetierResult",
    "TierVolume",
    "assess_health",
    "check_partner_import_mapping",
    "classify_tiers",
    "organization_set_letters_opt_out",
    "partner_import_apply",
    "partner_import_start",
    "partner_imports_to_redrive",
    "partner_merge",
    "partner_merge_preview",
    "provider_set_tier",
    "provider_unpin_tier",
    "providers_assess_health",
    "providers_retier",
]
