from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse

from audit.admin_views import PatientDetailsAdmin
from audit.models import PatientDataAccess
from audit.services import PATIENT_FIELDS, audit_record
from core.admin import deleting_parent
from referrals.models import Inquiry, Referral, ReferralEvent, SlaTarget, Status
from referrals.services.deletion import referrals_delete
from referrals.services.edit import referral_edit
from referrals.services.workflow import referral_log


class EventInline(admin.TabularInline):
    model = ReferralEvent
    extra = 0
    can_delete = False
    fields = readonly_fields = (
        "kind",
        "from_status",
        "to_status",
        "from_assignee",
        "to_assignee",
        "changes",
        "actor",
        "at",
        "note",
    )

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # History is written by the referral services only.
        return False


class ReferralAdminForm(forms.ModelForm):
    def clean_decline_reason(self) -> str:
        # The status is read-only here, so Django leaves out the check that ties the two
        # (referral_declined_has_reason), and the save would fail on it instead.
        reason: str = self.cleaned_data["decline_reason"]
        if self.instance.status == Status.DECLINED and not reason:
            raise forms.ValidationError(
                "A declined referral keeps the reason the referring office was given: "
                "change it rather than clear it."
            )
        return reason


@admin.register(Referral)
class ReferralAdmin(PatientDetailsAdmin):
    form = ReferralAdminForm
    list_display = ["pk", "received_at", "direction", "provider", "urgency", "channel", "status"]
    list_filter = ["status", "direction", "urgency", "channel"]
    search_fields = ["=pk", "provider__last_name", "provider__npi"]
    list_select_related = ["provider"]
    autocomplete_fields = ["provider"]
    date_hierarchy = "received_at"
    # Status moves go through the product's workflow so each writes its event.
    # A duplicate is marked on the referral's page (referral_mark_duplicate), which
    # cancels it and withdraws its letters; here it is only shown.
    readonly_fields = [
        "status",
        "duplicate_of",
        "seen_at",
        "closed_at",
        "created_by",
        "created_at",
        "updated_at",
    ]
    inlines = [EventInline]

    # Saved through the product's services, so a referral added or edited here gets the
    # same history rows and audit rows as one added or edited in the app.
    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        actor = cast(User, request.user)  # the admin site lets only signed-in staff in
        if not change:
            referral_log(referral=obj, actor=actor)
            action, fields = PatientDataAccess.Action.CREATE, PATIENT_FIELDS
        else:
            referral_edit(referral=obj, fields=form.changed_data, actor=actor)
            action = PatientDataAccess.Action.CHANGE
            fields = tuple(name for name in form.changed_data if name in PATIENT_FIELDS)
        if fields:
            audit_record(
                action=action,
                referral_ids=[obj.pk],
                user=request.user,
                fields=fields,
                request=request,
            )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        referrals_delete(referrals=[obj], actor=request.user, request=request)

    def delete_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        # The confirmation page lists the copies that protect a referral kept, but one
        # marked while it was open is found by referrals_delete: said, not a server error.
        try:
            return super().delete_view(request, object_id, extra_context)
        except ValidationError as error:
            self.message_user(request, " ".join(error.messages), level=messages.ERROR)
            return redirect(reverse("admin:referrals_referral_change", args=[object_id]))

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        referrals_delete(referrals=list(queryset), actor=request.user, request=request)

    def audit_opened(self, request: HttpRequest, obj: Referral) -> None:
        # The change form shows every patient field.
        audit_record(
            action=PatientDataAccess.Action.VIEW,
            referral_ids=[obj.pk],
            user=request.user,
            request=request,
        )


@admin.register(ReferralEvent)
class ReferralEventAdmin(admin.ModelAdmin):
    list_display = ["referral", "kind", "from_status", "to_status", "actor", "at"]
    list_filter = ["kind", "to_status"]
    search_fields = ["=referral__pk"]
    list_select_related = ["referral", "actor"]
    readonly_fields = [
        "referral",
        "kind",
        "from_status",
        "to_status",
        "from_assignee",
        "to_assignee",
        "changes",
        "actor",
        "at",
        "note",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A step of a referral's history goes only with the referral (whose delete page
        # asks this of every row it takes along), never by itself.
        return deleting_parent(request, "referrals_referral") and super().has_delete_permission(
            request, obj
        )


@admin.register(SlaTarget)
class SlaTargetAdmin(admin.ModelAdmin):
    list_display = ["urgency", "first_contact_hours", "appointment_days"]


@admin.register(Inquiry)
class InquiryAdmin(admin.ModelAdmin):
    list_display = ["pk", "source", "status", "received_at", "referral"]
    list_filter = ["source", "status"]
    raw_id_fields = ["referral"]
