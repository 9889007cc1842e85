"""Logging an activity with a partner, its attendees, cost shares and follow-up task."""

from __future__ import annotations

from collections.abc import Iterable

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction

from outreach.models import Activity, ActivityShare, Task
from outreach.services.compliance import _lock_providers, check_activity_cost
from partners.models import Provider, StaffMember


@transaction.atomic
def activity_log(
    *,
    activity: Activity,
    providers: Iterable[Provider],
    staff: Iterable[StaffMember],
    actor: User,
    partner: Provider | None = None,
) -> Activity:
    """Save a touch with its attendees; a next step with a due date becomes a follow-up
    task for the person who logged it, so the next visit starts from it: about `partner`,
    the provider whose page it was logged from, when they attended, else the first
    provider who did. A cost is shared per head and each physician's share goes in the
    gifts and meals ledger (see outreach.ledger for the rule); a share over the yearly
    limit is refused unless a manager gave a reason.

    An activity whose `submission_key` this user logged already (the same form posted
    again after its answer was lost) is not logged again: the first is returned."""
    providers = list(providers)
    staff = list(staff)
    if activity.cost:
        _lock_providers(providers)
    # After the lock: a retry that came while the first post was still being saved (the
    # answer was slow, not lost) waits for it here and finds it.
    if (logged := _logged_already(activity, actor)) is not None:
        return logged
    activity.logged_by = actor
    activity.full_clean(validate_unique=False)
    allowances = check_activity_cost(
        activity=activity, providers=providers, staff_count=len(staff), actor=actor
    )
    try:
        with transaction.atomic():
            activity.save()
    except IntegrityError:
        # The same form's other post (without a cost, so not serialised by the lock)
        # saved it meanwhile.
        if (logged := _logged_already(activity, actor)) is None:
            raise
        return logged
    activity.providers.set(providers)
    activity.staff.set(staff)
    ActivityShare.objects.filter(activity=activity).delete()
    ActivityShare.objects.bulk_create(
        ActivityShare(activity=activity, provider=a.provider, year=a.year, amount=a.share)
        for a in allowances
    )
    if activity.next_step and activity.next_step_due:
        # A next step may be longer than a task's title: the title is its start, and the
        # whole of it is the task's detail.
        title_length = Task._meta.get_field("title").max_length or 200
        step = activity.next_step
        shortened = len(step) > title_length
        about = partner if partner in providers else next(iter(providers), None)
        Task.objects.create(
            kind=Task.Kind.FOLLOW_UP,
            title=step[: title_length - 1] + "…" if shortened else step,
            detail=step if shortened else "",
            due_on=activity.next_step_due,
            assignee=actor,
            provider=about,
            activity=activity,
        )
    return activity


def _logged_already(activity: Activity, actor: User) -> Activity | None:
    """The activity this user logged from the same form (`submission_key`), if any."""
    if activity.submission_key is None:
        return None
    return Activity.objects.filter(submission_key=activity.submission_key, logged_by=actor).first()
