from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from core.htmx import render_page
from core.pagination import paginate
from outreach.forms import (
    ActivityForm,
    LetterTemplateForm,
    PartnerContextForm,
    TaskFilterForm,
    TaskForm,
)
from outreach.models import (
    MERGE_FIELDS,
    Activity,
    Letter,
    LetterTemplate,
    Task,
    render_merge_fields,
)
from outreach.pdf import letter_pdf
from outreach.services import (
    SAMPLE_MERGE_VALUES,
    activity_log,
    letter_mark_printed,
    letter_template_for,
    task_complete,
)
from partners.selectors import get_organization_for_user, get_provider_for_user


def get_task_for_user(request: HttpRequest, pk: int, *, write: bool = False) -> Task:
    queryset = Task.objects.for_user(request.user, write=write).select_related(
        "assignee", "provider", "referral"
    )
    return get_object_or_404(queryset, pk=pk)


def get_letter_for_user(request: HttpRequest, pk: int, *, write: bool = False) -> Letter:
    if not request.user.has_perm("outreach.change_letter" if write else "outreach.view_letter"):
        raise PermissionDenied
    letters = Letter.objects.select_related("provider", "provider__organization", "referral")
    if not (
        request.user.has_perm("outreach.view_all_tasks")
        or request.user.has_perm("outreach.change_letter")
    ):
        # Outside management and the print queue, a letter is visible to the owner of its
        # partner.
        letters = letters.filter(provider__owner=request.user) | letters.filter(
            referral__assigned_to=request.user
        )
    return get_object_or_404(letters, pk=pk)


@login_required
@permission_required("outreach.view_task", raise_exception=True)
def task_list(request: HttpRequest) -> HttpResponse:
    form = TaskFilterForm(request.GET or None)
    scope, state = "mine", "open"
    if form.is_valid():
        scope = form.cleaned_data["scope"] or scope
        state = form.cleaned_data["state"] or state
    tasks = Task.objects.for_user(request.user).select_related("assignee", "provider", "referral")
    if scope == "mine" or not request.user.has_perm("outreach.view_all_tasks"):
        scope = "mine"
        tasks = tasks.filter(assignee=request.user)
    elif scope == "unassigned":
        tasks = tasks.filter(assignee__isnull=True)
    if state == "overdue":
        tasks = tasks.overdue()
    elif state == "done":
        tasks = tasks.filter(status=Task.Status.DONE).order_by("-completed_at")
    else:
        tasks = tasks.open()
    page = paginate(request, tasks)
    return render_page(
        request,
        "outreach/task_list.html",
        {"page": page, "form": form, "scope": scope, "state": state, "today": timezone.localdate()},
        partial="results",
    )


@login_required
def task_detail(request: HttpRequest, pk: int) -> HttpResponse:
    task = get_task_for_user(request, pk)
    return render(request, "outreach/task_detail.html", {"task": task})


@login_required
@require_POST
def task_complete_view(request: HttpRequest, pk: int) -> HttpResponse:
    task = task_complete(task=get_task_for_user(request, pk, write=True))
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
def task_create(request: HttpRequest) -> HttpResponse:
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


@login_required
@permission_required("outreach.add_activity", raise_exception=True)
def activity_create(request: HttpRequest) -> HttpResponse:
    provider = organization = None
    context = PartnerContextForm(request.POST if request.method == "POST" else request.GET)
    if provider_pk := context.value("provider"):
        provider = get_provider_for_user(request.user, provider_pk)
        organization = provider.organization
    elif organization_pk := context.value("organization"):
        organization = get_organization_for_user(request.user, organization_pk)
    if provider is None and organization is None:
        messages.info(request, "Choose the partner you met, then log the activity from there.")
        return redirect("partners:provider_list")
    initial = {"occurred_at": timezone.localtime().replace(second=0, microsecond=0)}
    if provider is not None:
        initial["providers"] = [provider.pk]
    form = ActivityForm(
        request.POST or None, initial=initial, organization=organization, provider=provider
    )
    if request.method == "POST" and form.is_valid():
        activity = form.save(commit=False)
        activity.organization = organization
        activity_log(
            activity=activity,
            providers=form.cleaned_data["providers"],
            staff=form.cleaned_data["staff"],
            actor=request.user,
        )
        messages.success(request, f"{activity.get_kind_display()} logged.")
        return redirect(provider or organization)
    return render(
        request,
        "outreach/activity_form.html",
        {"form": form, "provider": provider, "organization": organization},
    )


@login_required
@permission_required("outreach.view_activity", raise_exception=True)
def activity_list(request: HttpRequest) -> HttpResponse:
    activities = (
        Activity.objects.select_related("logged_by", "organization")
        .prefetch_related("providers", "staff")
        .order_by("-occurred_at", "-pk")
    )
    if request.GET.get("mine"):
        activities = activities.filter(logged_by=request.user)
    page = paginate(request, activities)
    return render_page(request, "outreach/activity_list.html", {"page": page}, partial="results")


@login_required
def letter_detail(request: HttpRequest, pk: int) -> HttpResponse:
    letter = get_letter_for_user(request, pk)
    return render(request, "outreach/letter_detail.html", {"letter": letter})


@login_required
@permission_required("outreach.change_lettertemplate", raise_exception=True)
def template_list(request: HttpRequest) -> HttpResponse:
    for kind in LetterTemplate.Kind.values:
        letter_template_for(kind)
    return render(
        request,
        "outreach/lettertemplate_list.html",
        {"templates": LetterTemplate.objects.all()},
    )


@login_required
@permission_required("outreach.change_lettertemplate", raise_exception=True)
def template_update(request: HttpRequest, pk: int) -> HttpResponse:
    template = get_object_or_404(LetterTemplate, pk=pk)
    form = LetterTemplateForm(request.POST or None, instance=template)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Template saved. New letters use it from now on.")
        return redirect("outreach:template_list")
    return render(
        request,
        "outreach/lettertemplate_form.html",
        {
            "form": form,
            "template": template,
            "merge_fields": MERGE_FIELDS,
            "preview": _preview(form, template),
        },
    )


def _preview(form: LetterTemplateForm, template: LetterTemplate) -> dict[str, str]:
    # The text being typed when there is any, else the saved template.
    subject = form.data.get("subject", template.subject) if form.is_bound else template.subject
    body = form.data.get("body", template.body) if form.is_bound else template.body
    return {
        "subject": render_merge_fields(str(subject), SAMPLE_MERGE_VALUES),
        "body": render_merge_fields(str(body), SAMPLE_MERGE_VALUES),
    }


@login_required
@permission_required("outreach.change_lettertemplate", raise_exception=True)
@require_POST
def template_preview(request: HttpRequest, pk: int) -> HttpResponse:
    """The live preview beside the editor: the unsaved text rendered for a sample
    referral. Nothing is saved."""
    template = get_object_or_404(LetterTemplate, pk=pk)
    form = LetterTemplateForm(request.POST, instance=template)
    return render(
        request,
        "outreach/lettertemplate_form.html#preview",
        {"template": template, "preview": _preview(form, template)},
    )


@login_required
@permission_required("outreach.change_letter", raise_exception=True)
def print_queue(request: HttpRequest) -> HttpResponse:
    page = paginate(request, Letter.objects.print_queue())
    return render_page(request, "outreach/print_queue.html", {"page": page}, partial="results")


@login_required
def letter_pdf_download(request: HttpRequest, pk: int) -> HttpResponse:
    letter = get_letter_for_user(request, pk)
    response = HttpResponse(letter_pdf(letter), content_type="application/pdf")
    # The file name carries the letter number only, never a name.
    response["Content-Disposition"] = f'attachment; filename="letter-{letter.pk}.pdf"'
    return response


@login_required
@require_POST
def letter_printed(request: HttpRequest, pk: int) -> HttpResponse:
    letter = letter_mark_printed(
        letter=get_letter_for_user(request, pk, write=True), actor=request.user
    )
    if request.htmx:
        return render(request, "outreach/print_queue.html#letter-row", {"letter": letter})
    messages.success(request, f"Marked as {'faxed' if letter.channel == 'fax' else 'printed'}.")
    return redirect("outreach:print_queue")
