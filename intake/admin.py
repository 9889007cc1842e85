from typing import Any, cast

from django.contrib import admin
from django.contrib.auth.models import User
from django.http import HttpRequest

from intake.models import Hl7Import, IntakeLink, IntakeSubmission, ReferralAttachment
from intake.services import attachments_delete


@admin.register(IntakeLink)
class IntakeLinkAdmin(admin.ModelAdmin):
    """Links are made on the office's page, where the token is shown once; here they can
    only be looked at and revoked (by setting revoked_at)."""

    list_display = ["organization", "label", "created_at", "expires_at", "revoked_at"]
    list_select_related = ["organization"]
    search_fields = ["organization__name", "label"]
    readonly_fields = ["organization", "token_hash", "created_by", "created_at", "revoked_by"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(IntakeSubmission)
class IntakeSubmissionAdmin(admin.ModelAdmin):
    list_display = ["reference", "link", "submitted_at", "provider_added"]
    list_select_related = ["link", "link__organization"]
    search_fields = ["=reference"]
    readonly_fields = [f.name for f in IntakeSubmission._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(Hl7Import)
class Hl7ImportAdmin(admin.ModelAdmin):
    list_display = ["message_control_id", "sending_application", "referral", "imported_at"]
    search_fields = ["=message_control_id", "=placer_order_number"]
    readonly_fields = [f.name for f in Hl7Import._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(ReferralAttachment)
class ReferralAttachmentAdmin(admin.ModelAdmin):
    # No file field: the admin would link to a URL the private storage does not have.
    list_display = ["referral", "content_type", "size", "uploaded_at"]
    fields = readonly_fields = ("referral", "content_type", "size", "uploaded_by", "uploaded_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    # Through the service: the file goes with the row, and the audit trail says who.
    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        attachments_delete(
            attachments=ReferralAttachment.objects.filter(pk=obj.pk),
            actor=cast(User, request.user),  # the admin site lets only signed-in staff in
            request=request,
        )

    def delete_queryset(self, request: HttpRequest, queryset: Any) -> None:
        actor = cast(User, request.user)  # the admin site lets only signed-in staff in
        attachments_delete(attachments=queryset, actor=actor, request=request)
