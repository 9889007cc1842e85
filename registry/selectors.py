"""Reads that join the registry with our own partner data."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import NamedTuple

from django.conf import settings
from django.db.models import Count, Q, QuerySet, Sum
from django.db.models.functions import Coalesce

from partners.models import Provider
from referrals.models import Referral
from registry.models import RegistryProvider, SharedPatientDataset, SharedPatientPair, Taxonomy


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
            inbound=Count(
                "referrals",
                filter=Q(
                    referrals__direction=Referral.Direction.INBOUND,
                    referrals__duplicate_of__isnull=True,
                ),
            ),
            # A patient sent out twice, the copy marked, is one referral sent.
            outbound=Count(
                "referrals",
                filter=Q(
                    referrals__direction=Referral.Direction.OUTBOUND,
                    referrals__duplicate_of__isnull=True,
                ),
            ),
        )
        .values_list("npi", "pk", "status", "inbound", "outbound")
    )
    return {npi: PartnerSummary(pk, status, i, o) for npi, pk, status, i, o in rows}


# The physicians listed each way on a partner's page.
SHARED_PATIENT_PEERS = 10


@dataclass(frozen=True)
class SharedPatientPeer:
    """A physician who saw the same Medicare patients as the partner."""

    npi: str
    patients: int
    shared_count: int
    same_day_visits: int
    name: str = ""
    specialty: str = ""
    partner_id: int | None = None
    ours: bool = False


@dataclass(frozen=True)
class SharedPatients:
    dataset: SharedPatientDataset
    # Whom the partner's patients saw next, and whom they had seen before.
    went_to: list[SharedPatientPeer]
    came_from: list[SharedPatientPeer]
    # Over every pair the partner starts (not only those listed): patients counted once
    # per physician they went on to, and those of them who went on to our clinicians.
    went_on: int
    went_on_to_us: int
    knows_ours: bool

    @property
    def share_to_us(self) -> float | None:
        return self.went_on_to_us / self.went_on * 100 if self.went_on else None


def shared_patients_of(npi: str) -> SharedPatients | None:
    """Where a partner's Medicare patients went next and came from, by the newest CMS
    shared patient patterns loaded (its shortest window), with our own clinicians
    (settings.PRACTICE_NPIS) marked. None when no such data is loaded. Seven queries at
    most, whatever the size of the data."""
    dataset = SharedPatientDataset.objects.first()
    if dataset is None:
        return None
    ours = set(settings.PRACTICE_NPIS)
    pairs = SharedPatientPair.objects.filter(dataset=dataset)
    fields = ("npi_from", "npi_to", "patients", "shared_count", "same_day_visits")
    went_to = list(
        pairs.filter(npi_from=npi)
        .order_by("-patients", "npi_to")
        .values_list(*fields)[:SHARED_PATIENT_PEERS]
    )
    came_from = list(
        pairs.filter(npi_to=npi)
        .order_by("-patients", "npi_from")
        .values_list(*fields)[:SHARED_PATIENT_PEERS]
    )
    totals = pairs.filter(npi_from=npi).aggregate(
        went_on=Coalesce(Sum("patients"), 0),
        to_us=Coalesce(Sum("patients", filter=Q(npi_to__in=ours)), 0),
    )
    peers = {row[1] for row in went_to} | {row[0] for row in came_from}
    names = _peer_names(peers)

    def peer(other: str, row: tuple[str, str, int, int, int]) -> SharedPatientPeer:
        name, specialty, partner_id = names.get(other, ("", "", None))
        return SharedPatientPeer(
            npi=other,
            patients=row[2],
            shared_count=row[3],
            same_day_visits=row[4],
            name=name,
            specialty=specialty,
            partner_id=partner_id,
            ours=other in ours,
        )

    return SharedPatients(
        dataset=dataset,
        went_to=[peer(row[1], row) for row in went_to],
        came_from=[peer(row[0], row) for row in came_from],
        went_on=totals["went_on"],
        went_on_to_us=totals["to_us"],
        knows_ours=bool(ours),
    )


def _peer_names(npis: set[str]) -> dict[str, tuple[str, str, int | None]]:
    """Name, specialty and partner id by NPI: from our partners first, else the registry
    (with its taxonomy's label). Three queries at most."""
    if not npis:
        return {}
    names: dict[str, tuple[str, str, int | None]] = {
        provider.npi: (provider.display_name, provider.specialty, provider.pk)
        for provider in Provider.objects.filter(npi__in=npis).only(
            "pk", "npi", "first_name", "last_name", "credential", "specialty"
        )
    }
    listed = list(
        RegistryProvider.objects.filter(npi__in=npis - names.keys()).only(
            "npi",
            "entity_type",
            "organization_name",
            "first_name",
            "middle_name",
            "last_name",
            "credential",
            "primary_taxonomy_code",
        )
    )
    labels = {
        taxonomy.code: taxonomy.label
        for taxonomy in Taxonomy.objects.filter(
            code__in={found.primary_taxonomy_code for found in listed}
        )
    }
    for found in listed:
        names[found.npi] = (
            found.display_name,
            labels.get(found.primary_taxonomy_code, ""),
            None,
        )
    return names


def patients_to_us() -> QuerySet[SharedPatientPair] | None:
    """The newest shared patient patterns' pairs that end with our own clinicians, or None
    when there are none to read (no data loaded, or PRACTICE_NPIS not set)."""
    if not settings.PRACTICE_NPIS:
        return None
    dataset = SharedPatientDataset.objects.first()
    if dataset is None:
        return None
    return SharedPatientPair.objects.filter(dataset=dataset, npi_to__in=settings.PRACTICE_NPIS)


def patients_to_us_by_npi(
    pairs: QuerySet[SharedPatientPair], npis: Iterable[str]
) -> dict[str, int]:
    """For a page of NPIs: the Medicare patients each sent on to our clinicians (counted
    once per clinician). One aggregated query."""
    return dict(
        pairs.filter(npi_from__in=list(npis))
        .order_by()
        .values("npi_from")
        .annotate(patients_sum=Sum("patients"))
        .values_list("npi_from", "patients_sum")
    )
