"""Writes to the partner network that go beyond a plain form save."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from partners.models import Provider, TierChange


@transaction.atomic
def provider_set_tier(
    *, provider: Provider, tier: str, reason: str, actor: AbstractBaseUser | None
) -> TierChange | None:
    """Change a provider's tier and keep the change as history. Returns None when the tier
    is unchanged (nothing to record)."""
    locked = Provider.objects.select_for_update().get(pk=provider.pk)
    if locked.tier == tier:
        return None
    change = TierChange(
        provider=locked,
        from_tier=locked.tier,
        to_tier=tier,
        reason=reason,
        changed_by=actor,
        changed_at=timezone.now(),
    )
    change.full_clean()
    change.save()
    locked.tier = tier
    locked.save(update_fields=["tier", "updated_at"])
    provider.tier = tier
    return change
