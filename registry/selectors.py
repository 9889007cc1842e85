"""Reads that join the registry with our own partner data."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from django.db.models import Count, Q

from partners.models import Provider
from referrals.models import Referral


class PartnerSummary(NamedTuple):
    provider_id: int
    status: str
    inbound: int
    outbound: int


def partner_summaries(npis: Iterable[str]) -> dict[str, PartnerSummary]:
    """For a page of registry NPIs: which are already partners, with their referral counts
    in each direction. One aggregated query, whatever the page size."""
    rows = (
        Provider.objects.filter(npi__in=list(npis))
        .order_by()
        .annotate(
            inbound=Count("referrals", filter=Q(referrals__direction=Referral.Direction.INBOUND)),
            outbound=Count("referrals", filter=Q(referrals__direction=Referral.Direction.OUTBOUND)),
        )
        .values_list("npi", "pk", "status", "inbound", "outbound")
    )
    return {npi: PartnerSummary(pk, status, i, o) for npi, pk, status, i, o in rows}
