"""Workflows of the registry: turning a public NPPES record into a partner prospect, and
running an uploaded import."""

from __future__ import annotations

from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from partners.models import Organization, Provider
from registry.importing.nppes_load import NppesFileError, nppes_import
from registry.models import ImportJob, RegistryProvider, Taxonomy


def format_phone(digits: str) -> str:
    """NPPES stores bare digits; partners show US numbers the way staff dial them."""
    if len(digits) == 10 and digits.isdigit():
        return f"({digits[:3]}) {digits[3:6]}-{digits[6:]}"
    return digits


def check_add_as_prospect(record: RegistryProvider) -> None:
    if record.entity_type != RegistryProvider.EntityType.INDIVIDUAL:
        raise ValidationError("Only individual providers (type-1 NPIs) can become partners.")
    if record.deactivated:
        raise ValidationError("This NPI is deactivated.")
    if Provider.objects.filter(npi=record.npi).exists():
        raise ValidationError("This provider is already in the partner directory.")


def _organization_for(record: RegistryProvider) -> Organization:
    """The office a provider works at: the partner organization with the type-2 NPI that
    shares their practice address, else one at the same address, else a new one."""
    same_address = Q(address_line1=record.address_line1, zip5=record.zip5)
    registry_org = (
        RegistryProvider.objects.active()
        .filter(same_address, entity_type=RegistryProvider.EntityType.ORGANIZATION)
        .order_by("npi")
        .first()
        if record.address_line1 and record.zip5
        else None
    )
    if registry_org is not None:
        by_npi = Organization.objects.filter(npi=registry_org.npi).first()
        if by_npi is not None:
            return by_npi
    if record.address_line1:
        by_address = (
            Organization.objects.filter(
                address_line1__iexact=record.address_line1, zip_code__startswith=record.zip5
            )
            .order_by("pk")
            .first()
        )
        if by_address is not None:
            return by_address
    if registry_org is not None:
        name, npi = registry_org.organization_name.title(), registry_org.npi
    else:
        name = f"{record.last_name.title()} practice, {record.city.title()}".strip(", ")
        npi = ""
    organization = Organization(
        name=name[:200],
        npi=npi,
        phone=format_phone(record.phone),
        fax=format_phone(record.fax),
        address_line1=record.address_line1.title(),
        address_line2=record.address_line2.title(),
        city=record.city.title(),
        state=record.state[:2],
        zip_code=record.zip5,
    )
    organization.full_clean()
    organization.save()
    return organization


@transaction.atomic
def registry_provider_add_as_prospect(
    *, record: RegistryProvider, owner: AbstractBaseUser
) -> Provider:
    """Copy a registry provider into the partner directory as a prospect of `owner`."""
    check_add_as_prospect(record)
    taxonomy = Taxonomy.objects.filter(code=record.primary_taxonomy_code).first()
    provider = Provider(
        npi=record.npi,
        first_name=record.first_name.title()[:100],
        last_name=record.last_name.title()[:100],
        credential=record.credential[:50],
        taxonomy_code=record.primary_taxonomy_code,
        specialty=taxonomy.label[:200] if taxonomy else "",
        organization=_organization_for(record),
        phone=format_phone(record.phone),
        owner=owner,
        status=Provider.Status.PROSPECT,
    )
    provider.full_clean()
    try:
        # A colleague may have clicked the same row a moment earlier.
        with transaction.atomic():
            provider.save()
    except IntegrityError:
        raise ValidationError("This provider is already in the partner directory.") from None
    return provider


def import_job_run(*, job_id: int) -> ImportJob:
    """Load the file of a queued ImportJob, writing progress and counts back to its row.
    Claims the job with a conditional update, so a redelivered task does not run it twice."""
    claimed = ImportJob.objects.filter(pk=job_id, status=ImportJob.Status.QUEUED).update(
        status=ImportJob.Status.RUNNING, started_at=timezone.now()
    )
    job = ImportJob.objects.get(pk=job_id)
    if not claimed:
        return job

    def progress(done: int, total: int) -> None:
        percent = min(100, int(done * 100 / total)) if total else 100
        if percent != job.progress:
            job.progress = percent
            ImportJob.objects.filter(pk=job.pk).update(progress=percent)

    try:
        result = nppes_import(path=Path(job.file.path), progress=progress)
    except (NppesFileError, UnicodeDecodeError, OSError) as error:
        job.status = ImportJob.Status.FAILED
        job.error = str(error)[:2000]
    else:
        job.status = ImportJob.Status.DONE
        job.progress = 100
        job.imported, job.updated = result.imported, result.updated
        job.unchanged, job.deactivated = result.unchanged, result.deactivated
        job.rejected = result.rejected
        job.rejects_path = str(result.rejects_path or "")
    job.finished_at = timezone.now()
    job.save()
    return job
