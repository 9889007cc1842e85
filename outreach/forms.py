from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast

from django import forms
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.urls import reverse_lazy
from django.utils import timezone

from core.forms import IdsMultipleChoiceField, UserChoiceField, parse_version
from core.plausible import not_in_future, within_reach
from outreach import ledger, rekindle
from outreach.models import (
    Activity,
    CalendarFeed,
    ComplianceLimit,
    Event,
    Invitation,
    LetterTemplate,
    Task,
)
from outreach.models.merge_fields import merge_text_error
from partners.models import Organization, Provider, StaffMember
from partners.widgets import OfficePicker

NEXT_STEP_DEFAULT_DAYS = 7


class AttendeesField(IdsMultipleChoiceField):
    """Who attended; the form may label each with words of its own (a physician's gifts
    and meals total)."""

    label_for: Callable[[Any], str] | None = None

    def label_from_instance(self, obj: Any) -> str:
        if self.label_for is not None:
            return self.label_for(obj)
        return super().label_from_instance(obj)


class ActivityForm(forms.ModelForm):
    occurred_at = forms.DateTimeField(
        label="When",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    # A new key each time the form is drawn, sent back with every post of it (a retry
    # included): see Activity.submission_key.
    submission = forms.UUIDField(required=False, initial=uuid.uuid4, widget=forms.HiddenInput)

    class Meta:
        model = Activity
        fields = [
            "kind",
            "occurred_at",
            "providers",
            "staff",
            "notes",
            "next_step",
            "next_step_due",
            "cost",
            "limit_override_reason",
        ]
        widgets = {
            "cost": forms.NumberInput(attrs={"step": "0.01", "min": "0", "inputmode": "decimal"}),
            "providers": forms.CheckboxSelectMultiple,
            "staff": forms.CheckboxSelectMultiple,
            "notes": forms.Textarea(attrs={"rows": 4}),
            "next_step_due": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
        }
        field_classes = {"providers": AttendeesField, "staff": IdsMultipleChoiceField}
        help_texts = {
            "next_step_due": "The next step becomes a follow-up task; left empty, it is due a "
            "week after this."
        }

    def __init__(
        self,
        *args: Any,
        organization: Organization | None,
        provider: Provider | None,
        user: Any = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        # Only a manager may log a cost over the yearly limit, so only a manager sees why.
        if user is None or not user.has_perm("outreach.override_compliance_limit"):
            del self.fields["limit_override_reason"]
        # Attendees come from the office being visited, not from the whole network.
        providers = cast(AttendeesField, self.fields["providers"])
        staff = cast(IdsMultipleChoiceField, self.fields["staff"])
        if organization is not None:
            providers.queryset = Provider.objects.filter(organization=organization)
            staff.queryset = StaffMember.objects.filter(organization=organization)
        else:
            # Without an office, only the provider visited; without one, none (`pk=None`
            # is Django's IS NULL, written out for the type checker).
            providers.queryset = (
                Provider.objects.filter(pk=provider.pk)
                if provider
                else Provider.objects.filter(pk__isnull=True)
            )
            staff.queryset = StaffMember.objects.none()
        self._label_providers_with_ledger()

    def _label_providers_with_ledger(self) -> None:
        """Show each physician's gifts and meals total for the year beside their name, so
        the liaison sees the limit coming before choosing a lunch (one query). The year is
        the activity's: as typed on a form sent back, as stored on an edit, else this one
        (a December lunch logged in January counts in December's year)."""
        year = self._activity_year()
        field = cast(AttendeesField, self.fields["providers"])
        assert field.queryset is not None, "set in __init__"
        spent = ledger.spent_by_provider(field.queryset.values_list("pk", flat=True), year=year)
        self.ledger_limit = limit = ComplianceLimit.for_year(year)
        self.ledger_year = year

        def label(provider: Provider) -> str:
            total = spent.get(provider.pk, Decimal("0"))
            if not total and not limit:
                return provider.display_name
            if limit:
                percent = int(total / limit * 100)
                return f"{provider.display_name} · ${total} of ${limit} in {year} ({percent}%)"
            return f"{provider.display_name} · ${total} in {year}"

        field.label_for = label

    def _activity_year(self) -> int:
        when = self.instance.occurred_at
        if self.is_bound:
            try:
                when = self.fields["occurred_at"].clean(
                    self.data.get(self.add_prefix("occurred_at"))
                )
            except forms.ValidationError:
                when = None
        if isinstance(when, datetime):
            return timezone.localtime(when).year if timezone.is_aware(when) else when.year
        return timezone.localdate().year

    def clean_occurred_at(self) -> Any:
        return not_in_future(self.cleaned_data["occurred_at"], "When")

    def clean_next_step_due(self) -> Any:
        due = self.cleaned_data["next_step_due"]
        return due and within_reach(due, "Next step due")

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        self.instance.submission_key = cleaned.get("submission")
        occurred_on = timezone.localtime(cleaned.get("occurred_at") or timezone.now()).date()
        due = cleaned.get("next_step_due")
        if due and not cleaned.get("next_step"):
            self.add_error("next_step", "Say what the next step is, or clear its due date.")
        elif due and due < occurred_on:
            # It would start life as an overdue follow-up and stand as the partner's next step.
            self.add_error(
                "next_step_due",
                f"A next step cannot be due before the activity ({occurred_on:%b %-d, %Y}): "
                "check the date.",
            )
        elif cleaned.get("next_step") and not cleaned.get("next_step_due"):
            # A next step is a follow-up task; left without a date it is due in a week.
            occurred = cleaned.get("occurred_at") or timezone.now()
            cleaned["next_step_due"] = timezone.localtime(occurred).date() + timedelta(
                days=NEXT_STEP_DEFAULT_DAYS
            )
            self.instance.next_step_due = cleaned["next_step_due"]
        if cleaned.get("cost") and not (cleaned.get("providers") or cleaned.get("staff")):
            self.add_error("cost", "Tick who attended: the cost is shared among them.")
        return cleaned


class PlannedVisitLogForm(ActivityForm):
    """Logging a visit from the day plan: the same fields, laid out for a thumb."""

    KINDS = [
        Activity.Kind.VISIT,
        Activity.Kind.DROP_IN,
        Activity.Kind.LUNCH,
        Activity.Kind.CALL,
        Activity.Kind.MEETING,
        Activity.Kind.EVENT,
        Activity.Kind.GIFT,
    ]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # The planned visit is the key: it is logged once (planned_visit_log).
        del self.fields["submission"]
        kind = cast(forms.ChoiceField, self.fields["kind"])
        kind.choices = [(k.value, k.label) for k in self.KINDS]
        kind.widget = forms.RadioSelect(choices=kind.choices)
        self.fields["notes"].widget.attrs["rows"] = 3


class DayForm(forms.Form):
    day = forms.DateField(
        required=False, widget=forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")
    )

    def clean_day(self) -> date | None:
        day = self.cleaned_data["day"]
        return day and within_reach(day, "Day")


def plannable_offices(user: Any) -> QuerySet[Organization]:
    """The offices a user may put on their day plan: a liaison plans among the offices of
    their own partners (and unowned ones); a manager among all."""
    offices = Organization.objects.all()
    if not user.has_perm("outreach.view_all_tasks"):
        offices = offices.filter(
            Q(providers__owner=user) | Q(providers__owner__isnull=True)
        ).distinct()
    return offices


class PlanAddForm(forms.Form):
    day = forms.DateField(widget=forms.HiddenInput)
    organization = forms.ModelChoiceField(
        queryset=Organization.objects.none(),
        label="Office",
        widget=OfficePicker(
            typeahead_url=reverse_lazy("outreach:day_plan_office_typeahead"),
            placeholder="Office name, city or ZIP",
        ),
        error_messages={"invalid_choice": "Choose one of your offices from the list."},
    )

    def __init__(self, *args: Any, user: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cast(forms.ModelChoiceField, self.fields["organization"]).queryset = plannable_offices(user)

    def clean_day(self) -> date:
        return within_reach(self.cleaned_data["day"], "Day")


class PlannedVisitSkipForm(forms.Form):
    reason = forms.CharField(
        label="Why skip it?",
        max_length=300,
        strip=True,
        widget=forms.TextInput(attrs={"placeholder": "e.g. office closed, doctor out"}),
    )


class AnnualMeetingFilterForm(forms.Form):
    SCOPES = [("mine", "My partners"), ("all", "Everyone's partners")]
    TIERS = [("", "Tiers A and B"), ("A", "Tier A"), ("B", "Tier B")]

    scope = forms.ChoiceField(choices=SCOPES, required=False)
    tier = forms.ChoiceField(choices=TIERS, required=False)


class EventCancelForm(forms.Form):
    cancel_reason = forms.CharField(
        label="Why is it cancelled?",
        max_length=300,
        strip=True,
        widget=forms.TextInput(attrs={"placeholder": "e.g. the speaker is ill"}),
        help_text="Shown on the event's page and in the events list.",
    )


class EventAttendanceForm(forms.Form):
    limit_override_reason = forms.CharField(
        label="Reason for exceeding the yearly limit",
        max_length=300,
        required=False,
        help_text="Managers only, when a physician's share of the event's cost goes over "
        "the yearly gifts and meals limit.",
    )


class RouteForm(forms.Form):
    day = forms.DateField(widget=forms.HiddenInput)
    start_zip = forms.RegexField(
        regex=r"^\d{5}(-\d{4})?$",
        label="Starting ZIP",
        error_messages={"invalid": "Enter a 5-digit ZIP code, e.g. 68102."},
        widget=forms.TextInput(attrs={"inputmode": "numeric", "autocomplete": "postal-code"}),
    )


class CalendarFeedEventsForm(forms.ModelForm):
    """Which practice events a user's calendar feed carries; the URL stays the same."""

    class Meta:
        model = CalendarFeed
        fields = ["events"]
        widgets = {"events": forms.RadioSelect}


class ComplianceLimitForm(forms.ModelForm):
    class Meta:
        model = ComplianceLimit
        fields = ["year", "amount"]

    def clean_year(self) -> int:
        year = self.cleaned_data["year"]
        if not 2000 <= year <= 2100:
            raise forms.ValidationError("Enter a year between 2000 and 2100.")
        return year


class ComplianceReportForm(forms.Form):
    SORTS = [
        ("-total", "Highest total first"),
        ("total", "Lowest total first"),
        ("name", "Name"),
    ]
    year = forms.IntegerField(required=False, min_value=2000, max_value=2100)
    sort = forms.ChoiceField(choices=SORTS, required=False)


# The most one event may cost: its field holds more, but the shares, each rounded up to
# the cent, must still fit an activity's cost when attendance is recorded.
EVENT_COST_MAX = Decimal("1000000")


class EventForm(forms.ModelForm):
    starts_at = forms.DateTimeField(
        label="Starts",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    # The event as the edit page showed it (its updated_at): a save over a colleague's later
    # change is refused instead of undoing it.
    version = forms.CharField(required=False, widget=forms.HiddenInput)

    class Meta:
        model = Event
        fields = ["name", "kind", "starts_at", "place", "cost", "remind_days_before", "notes"]
        widgets = {
            "notes": forms.Textarea(attrs={"rows": 3}),
            "cost": forms.NumberInput(
                attrs={
                    "step": "0.01",
                    "min": "0",
                    "max": str(EVENT_COST_MAX),
                    "inputmode": "decimal",
                }
            ),
            "remind_days_before": forms.NumberInput(
                attrs={"min": "0", "max": "90", "inputmode": "numeric"}
            ),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Left empty, the usual week's notice.
        self.fields["remind_days_before"].required = False
        if self.instance.pk is not None:
            self.initial["version"] = self.instance.updated_at.isoformat()

    def clean_version(self) -> datetime | None:
        return parse_version(self, self.cleaned_data["version"])

    def clean_starts_at(self) -> Any:
        starts_at = within_reach(self.cleaned_data["starts_at"], "Starts")
        if (
            starts_at > timezone.now()
            and self.instance.pk is not None
            and self.instance.activities.exists()
        ):
            # Its activities and gifts and meals shares could then be neither recorded
            # again nor taken back: attendance is recorded only for what has happened.
            raise forms.ValidationError(
                "Who came is already recorded for this event, so it cannot move to a time "
                "that has not come yet. If it was postponed, create the new date as an "
                "event of its own."
            )
        return starts_at

    def clean_cost(self) -> Decimal | None:
        cost = self.cleaned_data["cost"]
        if cost is not None and cost > EVENT_COST_MAX:
            raise forms.ValidationError(
                f"Enter at most ${EVENT_COST_MAX:,.0f}: the cost of one event, catering and venue."
            )
        return cost

    def clean_remind_days_before(self) -> int:
        days = self.cleaned_data.get("remind_days_before")
        if days is None:
            return Event._meta.get_field("remind_days_before").default
        return days


class InviteForm(forms.Form):
    organization = forms.ModelChoiceField(
        queryset=Organization.objects.all(),
        label="Invite everyone at an office",
        widget=OfficePicker(
            typeahead_url=reverse_lazy("outreach:event_office_typeahead"),
            placeholder="Office name, city or ZIP",
        ),
        error_messages={
            "required": "Choose an office to invite.",
            "invalid_choice": "Choose an office from the list.",
        },
    )


class InvitationForm(forms.ModelForm):
    class Meta:
        model = Invitation
        fields = ["rsvp", "attended"]


class PartnerContextForm(forms.Form):
    """Which partner or office a page is about, from its query string."""

    provider = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    organization = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)

    def value(self, name: str) -> int | None:
        return self.cleaned_data.get(name) if self.is_valid() else None


class TaskForm(forms.ModelForm):
    assignee = UserChoiceField(queryset=get_user_model().objects.filter(is_active=True))

    class Meta:
        model = Task
        fields = ["title", "due_on", "assignee"]
        widgets = {"due_on": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d")}

    def clean_due_on(self) -> date | None:
        due = self.cleaned_data["due_on"]
        return due and within_reach(due, "Due")


class TaskFilterForm(forms.Form):
    SCOPES = [("mine", "My tasks"), ("all", "Everyone's tasks"), ("unassigned", "Unassigned")]
    STATES = [("open", "Open"), ("overdue", "Overdue"), ("done", "Done")]

    scope = forms.ChoiceField(choices=SCOPES, required=False)
    state = forms.ChoiceField(choices=STATES, required=False)


class LetterTemplateForm(forms.ModelForm):
    class Meta:
        model = LetterTemplate
        fields = ["subject", "body", "delay_business_days"]
        widgets = {"body": forms.Textarea(attrs={"rows": 12})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not self.instance.uses_delay:
            # Its letters go out on their own schedule (LetterTemplate.TIMING).
            del self.fields["delay_business_days"]

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        label = self.instance.get_kind_display().lower()
        for field in ("subject", "body"):
            if problem := merge_text_error(self.instance.kind, label, cleaned.get(field) or ""):
                self.add_error(field, problem)
        return cleaned


class RekindleNoteForm(forms.Form):
    """The liaison's note for a rekindle task, started from the rekindle note template."""

    subject = forms.CharField(max_length=200)
    # A note, not a brochure: a page of a letter is about 3,000 characters.
    body = forms.CharField(
        max_length=10_000,
        widget=forms.Textarea(attrs={"rows": 12}),
        help_text="Sent as written. Merge fields such as {{ provider_last_name }} are "
        "filled in; patient data never goes in a rekindle note.",
    )

    def _check(self, field: str) -> str:
        text = self.cleaned_data[field]
        if problem := rekindle.note_text_error(text):
            raise ValidationError(problem)
        return text

    def clean_subject(self) -> str:
        return self._check("subject")

    def clean_body(self) -> str:
        return self._check("body")
