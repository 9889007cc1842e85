"""Letter pages: a letter and its PDF, the print queue, and the letter template editor."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from audit.models import PatientDataAccess
from audit.services import audit_names_listed
from core.htmx import render_page, renders_partial
from core.pagination import paginate
from core.types import AuthedRequest
from outreach.forms import LetterTemplateForm
from outreach.models import Letter, LetterTemplate
from outreach.models.merge_fields import merge_fields_for, render_merge_fields
from outreach.pdf import letter_pdf
from outreach.services.delivery import (
    FAILED_LET_GO,
    FAILED_MAIL,
    FAILED_RETRY,
    letter_failed_resolve,
    letter_mark_printed,
    letter_withdraw_opted_out,
)
from outreach.services.letters import (
    SAMPLE_MERGE_VALUES,
    letter_audit_read,
    letter_template_for,
)


def get_letter_for_user(request: AuthedRequest, pk: int, *, write: bool = False) -> Letter:
    if not request.user.has_perm("outreach.change_letter" if write else "outreach.view_letter"):
        raise PermissionDenied
    letters = Letter.objects.for_user(request.user, write=write).select_related(
        "provider", "provider__organization", "referral", "printed_by"
    )
    return get_object_or_404(letters, pk=pk)


@login_required
def letter_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    letter = get_letter_for_user(request, pk)
    # Its subject and body name the patient (initials, the dates of their care).
    letter_audit_read(letter=letter, action=PatientDataAccess.Action.VIEW, request=request)
    context = {
        "letter": letter,
        # Who did what with it once it failed, and who marked it printed or faxed.
        "events": letter.events.select_related("actor"),
    }
    return render(request, "outreach/letter_detail.html", context)


@login_required
@permission_required("outreach.change_lettertemplate", raise_exception=True)
def template_list(request: AuthedRequest) -> HttpResponse:
    for kind in LetterTemplate.Kind.values:
        letter_template_for(kind)
    return render(
        request,
        "outreach/lettertemplate_list.html",
        {"templates": LetterTemplate.objects.all()},
    )


@login_required
@permission_required("outreach.change_lettertemplate", raise_exception=True)
def template_update(request: AuthedRequest, pk: int) -> HttpResponse:
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
            "merge_fields": merge_fields_for(template.kind),
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
def template_preview(request: AuthedRequest, pk: int) -> HttpResponse:
    """The live preview beside the editor: the unsaved text rendered for a sample
    referral. Nothing is saved."""
    template = get_object_or_404(LetterTemplate, pk=pk)
    form = LetterTemplateForm(request.POST, instance=template)
    return render(
        request,
        "outreach/lettertemplate_form.html#preview",
        {"template": template, "preview": _preview(form, template)},
    )


# Letters that failed for good shown above the queue, oldest first (one query, one more
# row read to know whether there are more).
FAILED_SHOWN = 20


@login_required
@permission_required("outreach.change_letter", raise_exception=True)
def print_queue(request: AuthedRequest) -> HttpResponse:
    page = paginate(request, Letter.objects.print_queue())
    # The letters that did not go are on the whole page only, not in the region htmx
    # redraws when paging through the queue.
    failed = (
        []
        if renders_partial(request)
        else list(
            Letter.objects.for_user(request.user, write=True)
            .failed()
            .select_related("provider", "provider__organization")
            .order_by("created_at", "pk")[: FAILED_SHOWN + 1]
        )
    )
    shown = [*page, *failed[:FAILED_SHOWN]]
    # A letter's subject names its patient (initials): the page lists them, as any list
    # of referrals does.
    audit_names_listed(
        request, sorted({letter.referral_id for letter in shown if letter.referral_id})
    )
    context = {
        "page": page,
        "failed": failed[:FAILED_SHOWN],
        "more_failed": len(failed) > FAILED_SHOWN,
    }
    return render_page(request, "outreach/print_queue.html", context, partial="results")


class FailedLetterForm(forms.Form):
    do = forms.ChoiceField(
        choices=[
            (FAILED_RETRY, "Try again"),
            (FAILED_MAIL, "Print and mail it instead"),
            (FAILED_LET_GO, "Let it go"),
        ]
    )


@login_required
@require_POST
def letter_failed(request: AuthedRequest, pk: int) -> HttpResponse:
    """Deal with a letter that failed for good, from the print and fax queue."""
    letter = get_letter_for_user(request, pk, write=True)
    form = FailedLetterForm(request.POST)
    if not form.is_valid():
        return HttpResponseBadRequest("Choose what to do: try again, mail it, or let it go.")
    try:
        letter = letter_failed_resolve(
            letter=letter, do=form.cleaned_data["do"], actor=request.user
        )
    except ValidationError as error:
        messages.info(request, " ".join(error.messages))
        return redirect("outreach:print_queue")
    done = {
        FAILED_RETRY: "It goes again within a minute, to the partner's address as it is now.",
        FAILED_MAIL: "It is in the print and fax queue, to be printed and mailed.",
        FAILED_LET_GO: "Let go: it will not be sent.",
    }[form.cleaned_data["do"]]
    # The message names the letter by its subject (patient initials), on a queue that may
    # no longer list it: a read, as the queue's own.
    if letter.referral_id:
        audit_names_listed(request, [letter.referral_id])
    messages.success(request, f"“{letter.subject}”: {done}")
    return redirect("outreach:print_queue")


@login_required
def letter_pdf_download(request: AuthedRequest, pk: int) -> HttpResponse:
    letter = get_letter_for_user(request, pk)
    letter_audit_read(letter=letter, action=PatientDataAccess.Action.DOWNLOAD, request=request)
    response = HttpResponse(letter_pdf(letter), content_type="application/pdf")
    # The file name carries the letter number only, never a name.
    response["Content-Disposition"] = f'attachment; filename="letter-{letter.pk}.pdf"'
    return response


def _queue_row(request: AuthedRequest, letter: Letter) -> HttpResponse:
    """The print queue's row for one letter, redrawn by htmx after an action on it. It
    shows the letter's subject again (patient initials), so it is a read of the patient's
    name audited as the whole queue audits it (`print_queue`)."""
    if letter.referral_id:
        audit_names_listed(request, [letter.referral_id])
    return render(request, "outreach/print_queue.html#letter-row", {"letter": letter})


@login_required
@require_POST
def letter_withdraw(request: AuthedRequest, pk: int) -> HttpResponse:
    """Take out of the print queue a letter to a partner who has since opted out."""
    letter = letter_withdraw_opted_out(letter=get_letter_for_user(request, pk, write=True))
    if request.htmx:
        return _queue_row(request, letter)
    if letter.status == Letter.Status.SKIPPED:
        messages.success(request, "Withdrawn: it will not be sent.")
    return redirect("outreach:print_queue")


@login_required
@require_POST
def letter_printed(request: AuthedRequest, pk: int) -> HttpResponse:
    letter = letter_mark_printed(
        letter=get_letter_for_user(request, pk, write=True), actor=request.user
    )
    if request.htmx:
        return _queue_row(request, letter)
    messages.success(request, f"Marked as {'faxed' if letter.channel == 'fax' else 'printed'}.")
    return redirect("outreach:print_queue")
