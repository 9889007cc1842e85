"""An office's opt-out of letters: set or cleared, stamped and kept in its history."""

from __future__ import annotations

from django.contrib.auth.models import User
from django.db import transaction
from django.utils import timezone

from partners.models import LettersOptOutChange, Organization


@transaction.atomic
def organization_set_letters_opt_out(
    *, organization: Organization, opted_out: bool, actor: User | None
) -> LettersOptOutChange | None:
    """Opt the office out of letters for all its partners (or back in), noting when and by
    whom on the office and as a history row. Letters already written and not yet sent are
    left as they are: delivery checks the opt-out again, so while it holds they are
    skipped, and once cleared they go. Returns None when it already stood so (nothing to
    record: an edit of the office's phone does not restamp the date)."""
    locked = Organization.objects.select_for_update().get(pk=organization.pk)
    if locked.letters_opt_out == opted_out:
        return None
    now = timezone.now()
    change = LettersOptOutChange(
        organization=locked, opted_out=opted_out, changed_by=actor, changed_at=now
    )
    change.full_clean()
    change.save()
    locked.letters_opt_out = opted_out
    locked.letters_opt_out_at = now if opted_out else None
    locked.letters_opt_out_by = actor if opted_out else None
    fields = ["letters_opt_out", "letters_opt_out_at", "letters_opt_out_by", "updated_at"]
    locked.save(update_fields=fields)
    for name in fields:
        setattr(organization, name, getattr(locked, name))
    return change
