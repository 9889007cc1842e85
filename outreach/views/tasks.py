"""Task pages: the list, a task, adding a follow-up and marking one done."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from audit.models import PatientDataAccess
from audit.services import audit_names_listed
from core.htmx import render_page
from core.pagination import paginate
from core.types import AuthedRequest
from outreach import rekindle
from outreach.forms import PartnerContextForm, TaskFilterForm, TaskForm
from outreach.models import Letter, Task
from outreach.models.tasks import patient_referral_ids
from outreach.services.tasks import task_complete
from partners.selectors import get_provider_for_user
from referrals.models import Referral


def get_task_for_user(request: AuthedRequest, pk: int, *, write: bool = False) -> Task:
    queryset = Task.objects.for_user(request.user, write=write).select_related(
        "assignee", "provider", "referral"
    )
    return get_object_or_404(queryset, pk=pk)


@login_required
@permission_required("outreach.view_task", raise_exception=True)
def task_list(request: AuthedRequest) -> HttpResponse:
    form = TaskFilterForm(request.GET or None)
    scope, state = "mine", "open"
    if form.is_valid():
        scope = form.cleaned_data["scope"] or scope
        state = form.cleaned_data["state"] or state
    tasks = Task.objects.for_user(request.user).select_related(
        "assignee", "provider", "referral", "activity__organization"
    )
    if not request.user.has_perm("outreach.view_all_tasks"):
        # Theirs, as for_user reads it (with the reminders nobody holds, for coordinators).
        scope = "mine"
    elif scope == "mine":
        tasks = tasks.filter(assignee=request.user)
    elif scope == "unassigned":
        tasks = tasks.filter(assignee__isnull=True)
    if state == "overdue":
        tasks = tasks.overdue()
    elif state == "done":
        tasks = tasks.filter(status=Task.Status.DONE).order_by("-completed_at", "-pk")
    else:
        tasks = tasks.open()
    page = paginate(request, tasks)
    for task in page:
        task.can_write_note = rekindle.can_write_note(request.user, task)
    # The titles of tasks about referrals name their patients (initials).
    audit_names_listed(request, patient_referral_ids(page))
    return render_page(
        request,
        "outreach/task_list.html",
        {"page": page, "form": form, "scope": scope, "state": state, "today": timezone.localdate()},
        partial="results",
    )


@login_required
def task_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    task = get_task_for_user(request, pk)
    # Its title names the patient of its referral (initials).
    audit_names_listed(request, patient_referral_ids([task]), action=PatientDataAccess.Action.VIEW)
    context: dict[str, Any] = {
        "task": task,
        "note": None,
        "can_open_note": False,
        "can_write_note": False,
    }
    if task.kind == Task.Kind.REKINDLE:
        note = context["note"] = task.letters.first()
        if note is None:
            context["can_write_note"] = rekindle.can_write_note(request.user, task)
        else:
            # What was done shows to whoever sees the task; the letter opens for its readers.
            context["can_open_note"] = (
                Letter.objects.for_user(request.user).filter(pk=note.pk).exists()
            )
    if task.referral is not None:
        # The referral and its letters, linked for those who may open them (a partner that
        # changed hands keeps its old tasks with the liaison who had it).
        context["can_open_referral"] = (
            Referral.objects.for_user(request.user).filter(pk=task.referral.pk).exists()
        )
        letters = task.referral.letters.all()
        can_open = letters.openable_by(request.user)
        context["referral_letters"] = [(letter, can_open(letter)) for letter in letters]
    return render(request, "outreach/task_detail.html", context)


@login_required
@require_POST
def task_complete_view(request: AuthedRequest, pk: int) -> HttpResponse:
    task = task_complete(task=get_task_for_user(request, pk, write=True))
    # The redrawn row, or the message on the next page, shows its title again.
    audit_names_listed(request, patient_referral_ids([task]))
    if request.htmx:
        return render(
            request,
            "outreach/task_list.html#task-row",
            {"task": task, "today": timezone.localdate()},
        )
    messages.success(request, f"Done: {task.title}")
    return redirect("outreach:task_list")


@login_required
@permission_required("outreach.add_task", raise_exception=True)
def task_create(request: AuthedRequest) -> HttpResponse:
    context = PartnerContextForm(request.GET)
    provider_pk = context.value("provider")
    provider = get_provider_for_user(request.user, provider_pk) if provider_pk else None
    form = TaskForm(request.POST or None, initial={"assignee": request.user.pk})
    if request.method == "POST" and form.is_valid():
        task = form.save(commit=False)
        task.kind = Task.Kind.FOLLOW_UP
        task.provider = provider
        task.save()
        messages.success(request, f"Task added: {task.title}")
        return redirect(provider or "outreach:task_list")
    return render(request, "outreach/task_form.html", {"form": form, "provider": provider})
