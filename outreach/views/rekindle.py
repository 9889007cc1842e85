"""The rekindle note page: from a rekindle task, the liaison writes a note to the partner
(started from the template), sees where it goes and a preview, and sends it."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.formats import date_format
from django.views.decorators.http import require_POST

from core.types import AuthedRequest
from outreach import rekindle
from outreach.forms import RekindleNoteForm
from outreach.models import Letter, Task
from partners.models import Provider
from partners.selectors import can_change_provider


def get_rekindle_task_for_user(request: AuthedRequest, pk: int) -> Task:
    """The rekindle task, if this user may act on it and on its partner; else 404."""
    tasks = (
        Task.objects.for_user(request.user, write=True)
        .filter(kind=Task.Kind.REKINDLE, provider__isnull=False)
        .select_related("assignee", "provider", "provider__organization", "provider__owner")
    )
    task = get_object_or_404(tasks, pk=pk)
    if task.provider is None or not can_change_provider(request.user, task.provider):
        raise Http404("No such task.")
    return task


def _partner(task: Task) -> Provider:
    """The task's partner: get_rekindle_task_for_user finds only tasks that have one."""
    assert task.provider is not None, "a rekindle task is about a partner"
    return task.provider


def _preview(task: Task, form: RekindleNoteForm, sender: User) -> dict[str, str]:
    """The note as the partner reads it, from the text being typed. Nothing is saved."""
    if form.is_bound:
        subject, body = str(form.data.get("subject", "")), str(form.data.get("body", ""))
    else:
        subject, body = form.initial["subject"], form.initial["body"]
    subject, body = rekindle.note_render(_partner(task), sender, subject=subject, body=body)
    return {"subject": subject, "body": body}


@login_required
def rekindle_note(request: AuthedRequest, pk: int) -> HttpResponse:
    task = get_rekindle_task_for_user(request, pk)
    sent = task.letters.first()
    if sent is not None and sent.status == Letter.Status.FAILED:
        messages.warning(
            request,
            f"The note of {date_format(timezone.localtime(sent.created_at), 'M j')} could not "
            "be delivered. "
            "Call or visit instead, and mark the task done when you have.",
        )
        return redirect(task)
    if sent is not None:
        # The back button, or a second press after the first went through.
        messages.info(request, "This note was already sent; nothing was sent twice.")
        return redirect(task)
    if task.status != Task.Status.OPEN:
        messages.info(request, f"This task is already {task.get_status_display().lower()}.")
        return redirect(task)
    provider = _partner(task)
    route = rekindle.note_route(provider)
    subject, body = rekindle.note_draft(provider, request.user)
    form = RekindleNoteForm(request.POST or None, initial={"subject": subject, "body": body})
    if request.method == "POST" and form.is_valid():
        try:
            result = rekindle.rekindle_note_send(
                task=task,
                subject=form.cleaned_data["subject"],
                body=form.cleaned_data["body"],
                actor=request.user,
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            if result.created:
                messages.success(
                    request,
                    f"Note to {provider.display_name} is on its way {route.description}. "
                    "The task is done.",
                )
            else:
                messages.info(request, "This note was already sent; nothing was sent twice.")
            return redirect(task)
    return render(
        request,
        "outreach/rekindle_note_form.html",
        {"task": task, "form": form, "route": route, "preview": _preview(task, form, request.user)},
    )


@login_required
@require_POST
def rekindle_note_preview(request: AuthedRequest, pk: int) -> HttpResponse:
    task = get_rekindle_task_for_user(request, pk)
    form = RekindleNoteForm(request.POST)
    return render(
        request,
        "outreach/rekindle_note_form.html#preview",
        {"task": task, "preview": _preview(task, form, request.user)},
    )
