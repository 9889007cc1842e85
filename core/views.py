from __future__ import annotations

from datetime import timedelta

from django.contrib.auth.decorators import login_required
from django.db.models import Count
from django.http import HttpResponse
from django.shortcuts import render
from django.utils import timezone

from audit.services import audit_names_listed
from core.roles import is_liaison
from core.types import AuthedRequest
from outreach.models import Letter, Task
from outreach.models.tasks import patient_referral_ids
from outreach.rekindle import can_write_note
from partners.selectors import staff_birthdays
from referrals.models import OPEN_STATUSES, Referral, Status


@login_required
def dashboard(request: AuthedRequest) -> HttpResponse:
    """Where each role starts the day: open work, what is due, and recent referrals."""
    user = request.user
    referrals = Referral.objects.for_user(user)
    since = timezone.now() - timedelta(days=30)
    # Referrals to us by status; those we sent out (whose statuses read differently: "Sent",
    # "Report received") are counted apart.
    counts = {
        (direction, status): n
        for direction, status, n in referrals.filter(status__in=OPEN_STATUSES)
        .order_by()
        .values_list("direction", "status")
        # COUNT(*), not COUNT(id): answered from referral_open_idx without the rows.
        .annotate(n=Count("*"))
    }
    my_tasks = Task.objects.for_user(user).open().filter(assignee=user)
    recent = list(referrals.for_list()[:8]) if user.has_perm("referrals.view_referral") else []
    due_tasks = list(my_tasks.select_related("provider", "referral")[:8])
    for task in due_tasks:
        task.can_write_note = can_write_note(user, task)
    context = {
        "pipeline": [
            {
                "status": status,
                "label": Status(status).label,
                "count": counts.get((Referral.Direction.INBOUND, status), 0),
            }
            for status in OPEN_STATUSES
        ],
        "sent_open": sum(
            n for (direction, _), n in counts.items() if direction == Referral.Direction.OUTBOUND
        ),
        "received_30d": referrals.inbound().counted().filter(received_at__gte=since).count(),
        "my_open_tasks": my_tasks.count(),
        "my_overdue_tasks": my_tasks.filter(due_on__lt=timezone.localdate()).count(),
        "due_tasks": due_tasks,
        # Those who work the print and fax queue see the letters that failed for good
        # there; nothing else tells them a thank-you or a report never reached the office.
        "failed_letters": (
            Letter.objects.for_user(user, write=True).failed().count()
            if user.has_perm("outreach.change_letter")
            else None
        ),
        "recent_referrals": recent,
        "today": timezone.localdate(),
        # A liaison's day is the day plan: it opens from here in one tap, not from the menu.
        "is_liaison": is_liaison(user),
        # The liaison's cue for a card or a box of cupcakes at the offices they look after.
        "birthdays": (
            staff_birthdays([user.pk], today=timezone.localdate()).get(user.pk, [])
            if is_liaison(user)
            else []
        ),
    }
    # The recent referrals' patients, and those named in the titles of the tasks shown.
    audit_names_listed(
        request,
        sorted({referral.pk for referral in recent} | set(patient_referral_ids(due_tasks))),
    )
    return render(request, "core/dashboard.html", context)
