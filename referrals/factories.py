from __future__ import annotations

from typing import Any

import factory
from django.utils import timezone

from partners.factories import ProviderFactory
from referrals.models import Referral

REASONS = [
    "Chronic knee pain, failed conservative therapy; evaluate for injection.",
    "New-onset atrial fibrillation; please evaluate and advise on anticoagulation.",
    "Uncontrolled type 2 diabetes despite two agents.",
    "Suspicious pigmented lesion on the back; evaluate for biopsy.",
    "Recurrent migraines, worsening over three months.",
    "Shoulder pain after fall; MRI shows partial rotator cuff tear.",
    "Abnormal thyroid function tests; nodule on ultrasound.",
    "Low back pain with radiculopathy, six weeks.",
]


class ReferralFactory(factory.django.DjangoModelFactory[Referral]):
    class Meta:
        model = Referral

    provider = factory.SubFactory(ProviderFactory)
    patient_first_name = factory.Faker("first_name")
    patient_last_name = factory.Faker("last_name")
    patient_dob = factory.Faker("date_of_birth", minimum_age=1, maximum_age=95)
    # 555 exchange: a real US number shape (an exchange never starts with 0 or 1).
    patient_phone = factory.Faker("numerify", text="(402) 555-####")
    reason = factory.Faker("random_element", elements=REASONS)
    received_at = factory.LazyFunction(timezone.now)


def referral_form_data(partner: Any, /, **overrides: Any) -> dict[str, Any]:
    """What a coordinator types into a referral form for a faxed, routine referral from (or,
    on the refer-out form, to) `partner`; `overrides` change or add fields, and one set to
    None is left out, as a field the form does not have."""
    data = {
        "direction": "inbound",
        "provider": partner.pk,
        "channel": "fax",
        "urgency": "routine",
        "received_at": "2026-11-20T09:15",
        "patient_first_name": "Ruth",
        "patient_last_name": "Olsen",
        "patient_dob": "1950-04-02",
        "reason": "See fax",
    }
    data.update(overrides)
    return {field: value for field, value in data.items() if value is not None}
