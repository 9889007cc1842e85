"""Inquiries from sources other than partner referrals: logging one, moving it on."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import get_object_or_404, redirect, render

from core.pagination import paginate
from core.types import AuthedRequest
from referrals.forms import InquiryForm
from referrals.models import Inquiry


@login_required
@permission_required("referrals.view_inquiry", raise_exception=True)
def inquiry_list(request: AuthedRequest) -> HttpResponse:
    """The front desk's inquiries, newest first: the open ones to move on (scheduled, seen
    as a new patient, lost), or every one with ?show=all."""
    show_all = request.GET.get("show") == "all"
    inquiries = Inquiry.objects.front_desk().select_related("created_by")
    return render(
        request,
        "referrals/inquiry_list.html",
        {
            "page": paginate(request, inquiries if show_all else inquiries.open()),
            "show_all": show_all,
        },
    )


@login_required
def inquiry_edit(request: AuthedRequest, pk: int | None = None) -> HttpResponse:
    """Log an inquiry from web, advertising, a directory or the patient, or move one on."""
    perm = "referrals.change_inquiry" if pk else "referrals.add_inquiry"
    if not request.user.has_perm(perm):
        raise PermissionDenied
    inquiry = get_object_or_404(Inquiry, pk=pk, referral__isnull=True) if pk is not None else None
    form = InquiryForm(request.POST or None, instance=inquiry)
    if request.method == "POST" and form.is_valid():
        saved = form.save(commit=False)
        if inquiry is None:
            saved.created_by = request.user
        saved.save()
        messages.success(request, "Inquiry saved.")
        return redirect("referrals:inquiries")
    return render(request, "referrals/inquiry_form.html", {"form": form, "inquiry": inquiry})
