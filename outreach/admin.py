from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html

from audit.admin_views import PatientDetailsAdmin
from audit.models import PatientDataAccess
from audit.services import audit_names_listed
from outreach.models import (
    Activity,
    ActivityShare,
    CalendarFeed,
    ComplianceLimit,
    Event,
    Invitation,
    Letter,
    LetterEvent,
    LetterTemplate,
    NewsletterIssue,
    PlannedVisit,
    PlannedVisitEvent,
    Task,
)
from outreach.models.tasks import patient_referral_ids
from outreach.services.letters import letter_audit_read


class ActivityShareInline(admin.TabularInline):
    """Ledger rows are written by the activity service only; the admin shows them."""

    model = ActivityShare
    extra = 0
    can_delete = False
    readonly_fields = ["provider", "year", "amount"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Activity)
class ActivityAdmin(admin.ModelAdmin):
    inlines = [ActivityShareInline]
    list_display = ["occurred_at", "kind", "organization", "logged_by", "next_step_due"]
    list_filter = ["kind", "logged_by"]
    search_fields = ["notes", "next_step", "organization__name"]
    list_select_related = ["organization", "logged_by"]
    autocomplete_fields = ["organization"]
    date_hierarchy = "occurred_at"
    # What the gifts-and-meals ledger is built from (who attended, the cost, the year)
    # changes only through the app, which rebuilds the shares and applies the limit.
    readonly_fields = ["occurred_at", "cost", "providers", "staff", "limit_override_reason"]


@admin.register(Task)
class TaskAdmin(PatientDetailsAdmin):
    list_display = ["title", "kind", "due_on", "assignee", "status"]
    list_filter = ["kind", "status", "assignee"]
    search_fields = ["title"]
    list_select_related = ["assignee"]
    raw_id_fields = ["referral", "provider", "activity"]

    # A task about a referral is titled with the patient's initials: its list and its
    # change form are reads, recorded as on the task pages (outreach.views.tasks).
    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> Any:
        response = super().changelist_view(request, extra_context)
        changelist = getattr(response, "context_data", {}).get("cl")
        if request.method == "GET" and changelist is not None:
            audit_names_listed(request, patient_referral_ids(changelist.result_list))
        return response

    def audit_opened(self, request: HttpRequest, obj: Task) -> None:
        audit_names_listed(
            request, patient_referral_ids([obj]), action=PatientDataAccess.Action.VIEW
        )


@admin.register(LetterTemplate)
class LetterTemplateAdmin(admin.ModelAdmin):
    list_display = ["kind", "subject", "delay_business_days", "updated_at"]


class LetterEventInline(admin.TabularInline):
    """Who did what with the letter once it failed: written by the delivery service only."""

    model = LetterEvent
    extra = 0
    can_delete = False
    fields = readonly_fields = ("at", "actor", "action", "failure")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(Letter)
class LetterAdmin(PatientDetailsAdmin):
    inlines = [LetterEventInline]
    list_display = ["pk", "kind", "provider", "status", "channel", "due_on", "sent_at", "attempts"]
    list_filter = ["kind", "status", "channel"]
    search_fields = ["provider__last_name", "=referral__pk"]
    list_select_related = ["provider"]
    raw_id_fields = ["referral", "provider", "newsletter", "summary"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        # A letter that went out is the record of what the office was told.
        if obj is not None and obj.status == Letter.Status.SENT:
            return [field.name for field in obj._meta.fields]
        return super().get_readonly_fields(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and obj.status == Letter.Status.SENT:
            return False
        return super().has_delete_permission(request, obj)

    def audit_opened(self, request: HttpRequest, obj: Letter) -> None:
        # The change form shows the subject and body, which name the patient: a read, as
        # on the letter's own page.
        letter_audit_read(letter=obj, action=PatientDataAccess.Action.VIEW, request=request)


@admin.register(ComplianceLimit)
class ComplianceLimitAdmin(admin.ModelAdmin):
    list_display = ["year", "amount", "updated_by", "updated_at"]
    readonly_fields = ["updated_by", "updated_at"]

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        obj.updated_by = request.user
        super().save_model(request, obj, form, change)


class PlannedVisitEventInline(admin.TabularInline):
    """The visit's history (skips with their reasons): written by the services only."""

    model = PlannedVisitEvent
    extra = 0
    can_delete = False
    readonly_fields = ["from_status", "to_status", "actor", "at", "reason"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(PlannedVisit)
class PlannedVisitAdmin(admin.ModelAdmin):
    list_display = ["planned_on", "position", "organization", "liaison", "status"]
    list_filter = ["status", "liaison"]
    list_select_related = ["organization", "liaison"]
    raw_id_fields = ["organization", "activity"]
    date_hierarchy = "planned_on"
    inlines = [PlannedVisitEventInline]


class InvitationInline(admin.TabularInline):
    """Who is invited and their RSVP change on the event's own page: a decline there
    withdraws the invitee's reminder, and a cancelled event takes nobody more."""

    model = Invitation
    extra = 0
    can_delete = False
    fields = readonly_fields = ("provider", "staff", "rsvp", "attended")

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


# What invitees are told (reminders, the calendar's SEQUENCE) follows these: they change on
# the event's own page only, through outreach.meetings.event_save.
EVENT_SCHEDULE_FIELDS = ["starts_at", "place", "remind_days_before"]


@admin.register(Event)
class EventAdmin(admin.ModelAdmin):
    """A back office view of events. The date, place and reminders of an existing event are
    read-only here, with a link to its page: changed there, invitees already reminded are
    told the new date or place, reminders of the old one are withdrawn, calendars update
    and a colleague's later change is not overwritten. A save here would do none of that
    and leave partners with a wrong date, which a manager would not expect of any page."""

    list_display = ["name", "kind", "starts_at", "place", "organizer"]
    list_filter = ["kind"]
    search_fields = ["name", "place"]
    raw_id_fields = ["organizer"]
    inlines = [InvitationInline]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            # A new event has nobody to tell yet.
            return ()
        return [*EVENT_SCHEDULE_FIELDS, "change_on_its_page"]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # An event with invitees is cancelled on its page (they are told, the letters
        # about it stay on record); deleting it would tell nobody and drop those letters.
        if obj is not None and obj.invitations.exists():
            return False
        return super().has_delete_permission(request, obj)

    def get_actions(self, request: HttpRequest) -> Any:
        # The bulk delete would skip the per-event rule above.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description="Date, place, reminders, invitees, cancelling")
    def change_on_its_page(self, obj: Event) -> str:
        return format_html(
            'Change them, or cancel the event, on <a href="{}">the event\'s page</a>: '
            "invitees are told a new date or place, or that it is cancelled, and their "
            "calendars update.",
            reverse("outreach:event_update", args=[obj.pk]),
        )


@admin.register(CalendarFeed)
class CalendarFeedAdmin(admin.ModelAdmin):
    """Administrators can see who has a feed and revoke it (delete); the token itself is
    never stored."""

    list_display = ["user", "created_at", "last_read_at"]
    readonly_fields = ["user", "token_hash", "created_at", "last_read_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False


@admin.register(NewsletterIssue)
class NewsletterIssueAdmin(admin.ModelAdmin):
    list_display = ["subject", "state", "audience_size", "prepared_count", "created_at"]
    list_filter = ["state"]
    search_fields = ["subject"]
    raw_id_fields = ["owner", "created_by"]
