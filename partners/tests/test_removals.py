"""A partner that goes away (deleted, or merged into another) leaves a ProviderRemoval, in
the same transaction, so an API sync can learn of it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.db.models import ProtectedError
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from partners.factories import OrganizationFactory, ProviderFactory
from partners.models import Provider, ProviderRemoval
from partners.services.merges import partner_merge
from referrals.factories import ReferralFactory

pytestmark = pytest.mark.django_db

ClientFor = Callable[[Any], Client]


def removals() -> list[tuple[int, str, str, int | None]]:
    return sorted(
        ProviderRemoval.objects.values_list("provider_id", "npi", "reason", "merged_into")
    )


def test_merging_a_partner_leaves_a_removal_naming_the_survivor(manager: User) -> None:
    survivor, duplicate = ProviderFactory.create_batch(2)
    before = timezone.now()

    partner_merge(survivor=survivor, duplicate=duplicate, actor=manager)

    assert removals() == [(duplicate.pk, duplicate.npi, "merged", survivor.pk)]
    assert before <= ProviderRemoval.objects.get().removed_at <= timezone.now()


def test_a_refused_merge_leaves_no_removal(manager: User) -> None:
    provider = ProviderFactory.create()
    with pytest.raises(ValidationError):
        partner_merge(survivor=provider, duplicate=provider, actor=manager)
    assert removals() == []


def test_merging_offices_leaves_no_partner_removal(manager: User) -> None:
    survivor, duplicate = OrganizationFactory.create_batch(2, npi="")
    partner_merge(survivor=survivor, duplicate=duplicate, actor=manager)
    assert removals() == []


def test_deleting_a_partner_leaves_a_removal(db: None) -> None:
    provider = ProviderFactory.create()
    provider_id = provider.pk
    provider.delete()
    assert removals() == [(provider_id, provider.npi, "deleted", None)]


def test_deleting_partners_in_bulk_leaves_a_removal_for_each(db: None) -> None:
    first, second, kept = ProviderFactory.create_batch(3)
    Provider.objects.exclude(pk=kept.pk).delete()
    assert removals() == [
        (first.pk, first.npi, "deleted", None),
        (second.pk, second.npi, "deleted", None),
    ]


def test_a_delete_the_database_refuses_leaves_no_removal(db: None) -> None:
    # A partner with referrals cannot be deleted (they are history): nothing is recorded.
    provider = ReferralFactory.create().provider
    with pytest.raises(ProtectedError):
        provider.delete()
    with pytest.raises(ProtectedError):
        Provider.objects.filter(pk=provider.pk).delete()
    assert removals() == []
    assert Provider.objects.filter(pk=provider.pk).exists()


def test_the_admin_delete_page_and_delete_action_leave_removals(
    administrator: User, client_for: ClientFor
) -> None:
    one, two = ProviderFactory.create_batch(2)
    admin = client_for(administrator)
    response = admin.post(reverse("admin:partners_provider_delete", args=[one.pk]), {"post": "yes"})
    assert response.status_code == 302
    response = admin.post(
        reverse("admin:partners_provider_changelist"),
        {"action": "delete_selected", "_selected_action": [two.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Provider.objects.exists()
    assert removals() == [(one.pk, one.npi, "deleted", None), (two.pk, two.npi, "deleted", None)]


def test_a_removal_keeps_ids_and_the_npi_only(db: None) -> None:
    # What a sync needs and nothing else: no names, notes or anything about patients.
    fields = {field.name for field in ProviderRemoval._meta.get_fields()}
    assert fields == {"id", "provider_id", "npi", "removed_at", "reason", "merged_into"}


def test_a_merged_removal_must_name_its_survivor_and_a_deleted_one_must_not(db: None) -> None:
    now = timezone.now()
    with pytest.raises(ValidationError):
        ProviderRemoval(provider_id=1, removed_at=now, reason="merged").full_clean()
    with pytest.raises(ValidationError):
        ProviderRemoval(provider_id=2, removed_at=now, reason="deleted", merged_into=3).full_clean()


def test_the_back_office_lists_removals_and_nobody_alters_them(
    administrator: User, client_for: ClientFor
) -> None:
    provider = ProviderFactory.create()
    provider.delete()
    removal = ProviderRemoval.objects.get()
    admin = client_for(administrator)
    page = admin.get(reverse("admin:partners_providerremoval_changelist"))
    assert page.status_code == 200
    assert provider.npi in page.content.decode()
    assert admin.get(reverse("admin:partners_providerremoval_add")).status_code == 403
    delete = reverse("admin:partners_providerremoval_delete", args=[removal.pk])
    assert admin.post(delete, {"post": "yes"}).status_code == 403
    assert ProviderRemoval.objects.filter(pk=removal.pk).exists()
