"""Newsletter pages, for managers: the issues sent, writing one with its audience and a
live preview, and a send's progress."""

from __future__ import annotations

from typing import cast

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.db.models import Count
from django.http import HttpResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from core.htmx import render_page
from core.pagination import paginate
from core.types import AuthedRequest
from outreach import newsletters
from outreach.forms_newsletters import NewsletterForm
from outreach.models import LetterTemplate, NewsletterIssue
from outreach.models.merge_fields import render_merge_fields
from outreach.services.letters import SAMPLE_MERGE_VALUES, letter_template_for
from partners.models import OPTED_OUT_OF_LETTERS, OPTED_OUT_OF_MARKETING


@login_required
@permission_required("outreach.view_newsletterissue", raise_exception=True)
def newsletter_list(request: AuthedRequest) -> HttpResponse:
    page = paginate(request, NewsletterIssue.objects.select_related("created_by"))
    return render_page(request, "outreach/newsletter_list.html", {"page": page}, partial="results")


def _preview(form: NewsletterForm) -> dict[str, object]:
    """How many partners the audience reaches, and the issue as the first of them would
    read it (a sample partner when it reaches nobody). Nothing is saved."""
    form.is_valid()
    partners = form.audience()
    first = partners.select_related("organization", "owner").order_by("last_name", "pk").first()
    subject = str(form.data.get("subject", "")) if form.is_bound else form.initial["subject"]
    body = str(form.data.get("body", "")) if form.is_bound else form.initial["body"]
    issue = NewsletterIssue(subject=subject, body=body)
    if first is not None:
        subject, body = newsletters.render_for(issue, first)
    else:
        subject = render_merge_fields(subject, SAMPLE_MERGE_VALUES)
        body = render_merge_fields(body, SAMPLE_MERGE_VALUES)
    # Those who opted out (or whose office did) are counted in the audience and get
    # nothing: one aggregate says both.
    counts = partners.aggregate(
        count=Count("pk"),
        opted_out=Count("pk", filter=OPTED_OUT_OF_LETTERS | OPTED_OUT_OF_MARKETING),
    )
    deactivated = form.audience(npi_deactivated=True).count()
    return {
        **counts,
        "deactivated": deactivated,
        "subject": subject,
        "body": body,
        "partner": first,
    }


@login_required
@permission_required("outreach.add_newsletterissue", raise_exception=True)
def newsletter_create(request: AuthedRequest) -> HttpResponse:
    template = letter_template_for(LetterTemplate.Kind.NEWSLETTER)
    form = NewsletterForm(
        request.POST or None, initial={"subject": template.subject, "body": template.body}
    )
    submit_label = "Review and send"
    if request.method == "POST" and form.is_valid():
        if form.confirmed():
            draft = form.save(commit=False)
            issue = newsletters.newsletter_send(issue=draft, actor=request.user)
            if issue.pk != draft.pk:
                messages.info(
                    request, "This newsletter was sent a moment ago: it is not sent again."
                )
            else:
                messages.success(request, "Newsletter queued: the letters are being prepared.")
            return redirect(issue)
        # Nothing is sent on the first press: the sender sees how many it reaches.
        count = form.audience_count
        form.data = data = cast(QueryDict, form.data).copy()  # bound to request.POST
        data["confirm_count"] = str(count)
        data["confirm_audience"] = form.audience_key()
        submit_label = f"Send to {count:,} partner{'s' if count != 1 else ''}"
        messages.info(
            request,
            f"This newsletter goes to {count:,} active partner{'s' if count != 1 else ''}. "
            f"Check the preview, then press “{submit_label}”.",
        )
    return render(
        request,
        "outreach/newsletter_form.html",
        {
            "form": form,
            "preview": _preview(form),
            "template": template,
            "merge_fields": newsletters.NEWSLETTER_MERGE_FIELDS,
            "submit_label": submit_label,
        },
    )


@login_required
@permission_required("outreach.add_newsletterissue", raise_exception=True)
@require_POST
def newsletter_preview(request: AuthedRequest) -> HttpResponse:
    form = NewsletterForm(request.POST)
    return render(request, "outreach/newsletter_form.html#preview", {"preview": _preview(form)})


@login_required
@permission_required("outreach.view_newsletterissue", raise_exception=True)
def newsletter_detail(request: AuthedRequest, pk: int) -> HttpResponse:
    issue = get_object_or_404(NewsletterIssue.objects.select_related("created_by", "owner"), pk=pk)
    return render_page(
        request,
        "outreach/newsletter_detail.html",
        {"issue": issue, "progress": newsletters.newsletter_progress(issue)},
        partial="progress",
    )
