from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any, cast

import django_filters
from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Q
from django.http import QueryDict
from django.utils import timezone

from core.dates import TWELVE_MONTHS
from core.filters import DateRangeFilterForm, LocalDayFilter, PersonFilter, StyledFilterSet
from core.forms import UserChoiceField, parse_version
from core.ids import parse_id
from core.phones import clean_us_phone
from core.plausible import not_in_future
from core.roles import Role, role_holders
from core.text import strip_invisible
from intake.uploads import DocumentsField, KeepsDocumentsMixin
from partners.models import Provider
from partners.widgets import ProviderPicker
from referrals.models import REASON_SUGGESTIONS, Inquiry, Referral, SlaState, Status
from referrals.selectors import possible_duplicates
from referrals.services.bulk import BULK_STATUSES

# A patient's identity: a shared clinic workstation's browser must not offer one patient's
# name, birth date or phone as a suggestion in the next patient's form.
PATIENT_IDENTITY_FIELDS = (
    "patient_first_name",
    "patient_last_name",
    "patient_dob",
    "patient_phone",
)


def no_autofill(form: forms.BaseForm) -> None:
    for name in PATIENT_IDENTITY_FIELDS:
        if name in form.fields:
            form.fields[name].widget.attrs["autocomplete"] = "off"


def coordinator_choices(*, holder: int | None = None) -> Any:
    """Who may be given referrals: active coordinators and managers, and `holder`, the
    referral's current coordinator, whoever they are (one who has left, an administrator
    who claimed it), so a form about that referral shows them and keeps them."""
    people = Q(is_active=True) & role_holders(Role.COORDINATOR, Role.MANAGER)
    if holder is not None:
        people |= Q(pk=holder)
    return (
        get_user_model()
        .objects.filter(people)
        .distinct()
        .order_by("first_name", "last_name", "username")
    )


class ReferralForm(forms.ModelForm):
    received_at = forms.DateTimeField(
        label="Received",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    assigned_to = UserChoiceField(
        queryset=coordinator_choices(), required=False, label="Coordinator"
    )
    version = forms.CharField(required=False, widget=forms.HiddenInput)

    class Meta:
        model = Referral
        fields = [
            "direction",
            "provider",
            "out_of_network_reason",
            "channel",
            "urgency",
            "received_at",
            "patient_first_name",
            "patient_last_name",
            "patient_dob",
            "patient_phone",
            "reason",
            "assigned_to",
        ]
        help_texts = {
            "out_of_network_reason": "Only for a patient we send out, to a specialist who is "
            "not an in-network partner.",
        }
        widgets = {
            "provider": ProviderPicker(),
            "patient_dob": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "reason": forms.Textarea(attrs={"rows": 3}),
            "patient_phone": forms.TextInput(attrs={"type": "tel"}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        no_autofill(self)
        if self.instance.pk is None:
            self.initial.setdefault(
                "received_at", timezone.localtime().replace(second=0, microsecond=0)
            )
        else:
            # What the user saw: a save over a colleague's later change is refused.
            self.initial["version"] = self.instance.updated_at.isoformat()
            holder = self.instance.assigned_to_id
            if holder is not None:
                # Listed, or the select would show nobody and the save unassign silently.
                assigned_to = cast(UserChoiceField, self.fields["assigned_to"])
                assigned_to.queryset = coordinator_choices(holder=holder)
            if self.instance.direction == Referral.Direction.OUTBOUND:
                self.fields["received_at"].label = "Sent"
        # Typing a name is not choosing: the list that opens under the box is.
        pick = "Choose a partner from the list (type two or more letters of a name or an NPI)."
        self.fields["provider"].error_messages.update(invalid_choice=pick, required=pick)

    def clean_version(self) -> datetime | None:
        return parse_version(self, self.cleaned_data["version"])

    def clean_patient_phone(self) -> str:
        return clean_us_phone(self.cleaned_data["patient_phone"])

    def clean(self) -> dict[str, Any] | None:
        """A patient sent to a specialist outside the network needs the reason (what the
        leakage report shows), however the referral is entered or edited."""
        super().clean()
        data = self.cleaned_data
        provider = data.get("provider")
        direction = data.get("direction", self.instance.direction)
        if self.instance.pk and "direction" in self.changed_data:
            self._check_direction_of_a_marked_pair()
        if self.instance.duplicate_of_id is not None:
            self._check_patient_of_a_marked_copy()
        if direction != Referral.Direction.OUTBOUND:
            data["out_of_network_reason"] = ""  # only a referral sent out has one
            return data
        if provider is None:
            return data
        # An edit that keeps the recipient keeps the snapshot taken when it was sent.
        resent = not self.instance.pk or {"provider", "direction"} & set(self.changed_data)
        in_network = provider.in_network if resent else self.instance.in_network
        # As it will be stored (Referral.clean takes invisible characters out): a reason of
        # nothing else would be saved empty and listed as "No reason given".
        reason = strip_invisible(data.get("out_of_network_reason", "")).strip()
        if in_network is False and not reason:
            was = "is out of network" if resent else "was out of network when they were sent"
            self.add_error(
                "out_of_network_reason",
                f"{provider.display_name} {was}: say why the patient goes there rather than "
                "to a preferred partner.",
            )
        return data

    def _check_patient_of_a_marked_copy(self) -> None:
        """A copy is the referral it repeats entered again: the same patient from the same
        partner. Given another, it would be a referral of its own still cancelled and
        counted nowhere; it is put back first (Not a copy). The referral kept may still be
        corrected (a mistyped name): its copies stay marked, counted nowhere either way."""
        typed = (self.cleaned_data.get("patient_last_name") or "").strip().lower()
        for name in ("provider", "patient_last_name", "patient_dob"):
            if name in self.changed_data and not (
                # Its case or spaces only: still the same name (as duplicates are matched).
                name == "patient_last_name" and typed == self.initial.get(name, "").strip().lower()
            ):
                self.add_error(
                    name,
                    f"It is marked as a duplicate of referral #{self.instance.duplicate_of_id}"
                    ", the same patient from the same partner: correct that one instead, or, "
                    "if this is another patient or partner, put it back first (Not a copy).",
                )

    def _check_direction_of_a_marked_pair(self) -> None:
        """A copy marked as a duplicate and the referral it repeats go the same way: turned
        the other way, the original would leave the patient counted nowhere (its copy
        cancelled), and the copy would be a duplicate of nothing it can be. Put the copy
        back first (Not a copy)."""
        referral = self.instance
        if referral.duplicate_of_id is not None:
            self.add_error(
                "direction",
                f"It is marked as a duplicate of referral #{referral.duplicate_of_id}: put "
                "it back first (Not a copy) if it is a referral of its own.",
            )
            return
        copies = list(referral.duplicates.order_by("pk").values_list("pk", flat=True)[:10])
        if copies:
            numbers = ", ".join(f"#{pk}" for pk in copies)
            self.add_error(
                "direction",
                f"{numbers} {'is' if len(copies) == 1 else 'are'} marked as a duplicate of "
                "it and would then be counted nowhere: put "
                f"{'it' if len(copies) == 1 else 'them'} back first (Not a copy).",
            )

    def clean_received_at(self) -> datetime:
        value = not_in_future(self.cleaned_data["received_at"], self.fields["received_at"].label)
        stored = self.instance.received_at if self.instance.pk else None
        # The field shows minutes only: an untouched value keeps its stored seconds rather
        # than being rewritten (and recorded in the history as an edit) on every save.
        if stored is not None and value == stored.replace(second=0, microsecond=0):
            return stored
        # What followed it cannot come first: the SLA clocks and the turnaround report
        # measure the waits from this moment (a negative wait skews every median), and a
        # step refuses an appointment before it (check_referral_transition).
        for moment, what in (
            (self.instance.contacted_at, "first contact"),
            (self.instance.appointment_at, "the appointment"),
        ):
            if moment is not None and value > moment:
                raise forms.ValidationError(
                    f"This is after {what} ({timezone.localtime(moment):%b %-d, %Y at %-I:%M %p}): "
                    "check the date and time."
                )
        return value


class OutboundReferralForm(ReferralForm):
    """Refer a patient out to a specialist: in-network partners come first in the picker,
    and choosing anyone else asks why (that reason is what the leakage report shows)."""

    class Meta(ReferralForm.Meta):
        fields = [
            "provider",
            "out_of_network_reason",
            "channel",
            "urgency",
            "received_at",
            "patient_first_name",
            "patient_last_name",
            "patient_dob",
            "patient_phone",
            "reason",
            "assigned_to",
        ]
        labels = {"provider": "Specialist"}

    # As on the entry form: the same patient lately sent to this specialist is shown first.
    confirm_duplicate = forms.BooleanField(
        required=False,
        label="This is a new referral, not one of those above: save it anyway",
        widget=forms.HiddenInput,
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instance.direction = Referral.Direction.OUTBOUND
        self.fields["received_at"].label = "Sent"
        self.fields["provider"].help_text = "In-network partners are listed first."

    def ask_to_confirm_duplicate(self) -> None:
        self.fields["confirm_duplicate"].widget = forms.CheckboxInput()


class PeriodForm(forms.Form):
    """The period a report covers; by default the last twelve months."""

    since = forms.DateField(
        required=False, label="From", widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        required=False, label="To", widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for field in self.fields.values():
            field.widget.attrs["class"] = "form-control"
        # Left empty, the boxes show the default period the report covers.
        since, until = self.default_period()
        self.fields["since"].widget.attrs["placeholder"] = since.isoformat()
        self.fields["until"].widget.attrs["placeholder"] = until.isoformat()
        if self.is_bound and not self.data.get("since") and not self.data.get("until"):
            # Bound to request.GET; a copy, since the request's own is immutable.
            self.data = data = cast(QueryDict, self.data).copy()
            data["since"], data["until"] = since.isoformat(), until.isoformat()

    @staticmethod
    def default_period() -> tuple[date, date]:
        today = timezone.localdate()
        return today - TWELVE_MONTHS, today

    def file_stem(self, name: str) -> str:
        """A download's file name without its extension: the report and its period."""
        return f"{name}-{self.cleaned_data['since']}-{self.cleaned_data['until']}"

    # Keeps the datetime arithmetic in bounds (9999-12-31 + 1 day overflows).
    EARLIEST, LATEST = date(1900, 1, 1), date(2200, 12, 31)

    def _in_range(self, name: str) -> date | None:
        value: date | None = self.cleaned_data.get(name)
        if value is not None and not self.EARLIEST <= value <= self.LATEST:
            raise forms.ValidationError("Choose a date between 1900 and 2200.")
        return value

    def clean_since(self) -> date | None:
        return self._in_range("since")

    def clean_until(self) -> date | None:
        return self._in_range("until")

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        today = timezone.localdate()
        if self.errors:
            return data
        data["until"] = data.get("until") or today
        if not data.get("since"):
            # Given only an end, the twelve months before it (not before today).
            if data["until"] - self.EARLIEST < timedelta(days=365):
                self.add_error(
                    "until",
                    "With no From date the report covers the twelve months before To, "
                    "which would start before 1900: give a From date too.",
                )
                return data
            data["since"] = data["until"] - timedelta(days=365)
        if data["since"] > data["until"]:
            raise forms.ValidationError(
                f"The period must start before it ends: From ({data['since']:%b %-d, %Y}) "
                f"is after To ({data['until']:%b %-d, %Y})."
            )
        return data

    def bounds(self) -> tuple[datetime, datetime]:
        """[start, end) as aware datetimes covering whole days in the local time zone."""
        start = datetime.combine(self.cleaned_data["since"], time.min)
        end = datetime.combine(self.cleaned_data["until"] + timedelta(days=1), time.min)
        return timezone.make_aware(start), timezone.make_aware(end)


class ReciprocityForm(PeriodForm):
    """The reciprocity report's period, and optionally the one partner to follow over time
    (reached from the partner's row, so a hidden field rather than a picker)."""

    provider = forms.ModelChoiceField(
        queryset=Provider.objects.only("pk", "first_name", "last_name", "credential"),
        required=False,
        widget=forms.HiddenInput,
    )


class ReferralEntryForm(KeepsDocumentsMixin, ReferralForm):
    """Logging a new referral: the referral, any faxed or scanned documents beside it,
    and the confirmation that a possible duplicate is really a new referral."""

    documents = DocumentsField(label="Faxed or scanned documents")
    confirm_duplicate = forms.BooleanField(
        required=False,
        label="This is a new referral, not one of those above: save it anyway",
        widget=forms.HiddenInput,
    )

    def __init__(self, *args: Any, with_documents: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not with_documents:
            # A phone call or a walk-in brings no fax: the quick form leaves the field out.
            del self.fields["documents"]
            return
        # The chosen document is shown beside the form (static/js/app.js), to type from.
        self.fields["documents"].widget.attrs["data-preview"] = "document-preview"

    def ask_to_confirm_duplicate(self) -> None:
        self.fields["confirm_duplicate"].widget = forms.CheckboxInput()


class TransitionForm(forms.Form):
    to_status = forms.ChoiceField(choices=Status.choices, widget=forms.HiddenInput)
    note = forms.CharField(
        required=False, max_length=2000, widget=forms.Textarea(attrs={"rows": 2})
    )
    decline_reason = forms.CharField(required=False, max_length=300)
    hold_reason = forms.CharField(required=False, max_length=300)
    cancel_reason = forms.CharField(required=False, max_length=300)
    appointment_at = forms.DateTimeField(
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )
    # The referral as the page showed it: a step taken on a page someone else's change has
    # since overtaken is refused instead of undoing that change.
    version = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_version(self) -> datetime | None:
        return parse_version(self, self.cleaned_data["version"])


class DuplicateForm(forms.Form):
    """Marks the referral as a duplicate of `original` (referral_mark_duplicate)."""

    original = forms.IntegerField(min_value=1, max_value=2**63 - 1)
    version = forms.CharField(required=False, widget=forms.HiddenInput)

    def clean_version(self) -> datetime | None:
        return parse_version(self, self.cleaned_data["version"])


class QueueFilterForm(DateRangeFilterForm):
    """The queue's filter form: a received-from date after the received-to date finds
    nothing, which is said instead of showing an empty queue."""

    date_range = ("received_after", "received_before")
    # Set by ReferralFilter: the user the list is for.
    viewer: Any = None

    def clean_alike(self) -> Referral | None:
        """The referral asked for by its number, if this user may match its patient. Read
        while the filters are checked, so a refusal also stops the export (which makes no
        file of more patients than asked)."""
        number = self.cleaned_data.get("alike")
        if number is None:
            return None
        if self.viewer is None or not self.viewer.has_perm("referrals.view_patient_details"):
            raise forms.ValidationError(
                "Your role does not see patient details, so it cannot match them."
            )
        referral = (
            Referral.objects.for_user(self.viewer)
            .select_related("provider")
            .filter(pk=number)
            .first()
        )
        if referral is None:
            raise forms.ValidationError(f"There is no referral #{number} you can open.")
        return referral


class ReferralNumberFilter(django_filters.Filter):
    field_class = forms.IntegerField


class ReferralFilter(StyledFilterSet):
    static_form = True

    number = django_filters.CharFilter(
        method="filter_number",
        label="Referral # or reference",
        max_length=20,
        widget=forms.TextInput(attrs={"placeholder": "# or reference"}),
    )
    status = django_filters.MultipleChoiceFilter(
        choices=Status.choices, widget=forms.CheckboxSelectMultiple
    )
    open = django_filters.BooleanFilter(
        method="filter_open", label="Open only", widget=forms.CheckboxInput
    )
    direction = django_filters.ChoiceFilter(
        choices=Referral.Direction.choices, empty_label="Both directions"
    )
    urgency = django_filters.ChoiceFilter(
        choices=Referral.Urgency.choices, empty_label="Any urgency"
    )
    provider = django_filters.ModelChoiceFilter(
        queryset=Provider.objects.all(), widget=ProviderPicker(), label="Partner"
    )
    received_after = LocalDayFilter(
        field_name="received_at",
        end="from",
        label="Received from",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    received_before = LocalDayFilter(
        field_name="received_at",
        end="to",
        label="Received to",
        widget=forms.DateInput(attrs={"type": "date"}),
    )
    network = django_filters.ChoiceFilter(
        field_name="in_network",
        label="Network",
        empty_label="Any network",
        choices=[("true", "Sent in network"), ("false", "Sent out of network")],
        help_text="Patients sent out, not counting those declined or cancelled.",
        method="filter_network",
    )
    mine = django_filters.BooleanFilter(
        method="filter_mine", label="Assigned to me", widget=forms.CheckboxInput
    )
    # What the reports count (their figures link here with it ticked): copies cancelled as
    # duplicates left out.
    counted = django_filters.BooleanFilter(
        method="filter_counted", label="Leave out duplicates", widget=forms.CheckboxInput
    )
    assigned_to = PersonFilter(
        queryset=coordinator_choices(),
        null_label="Unassigned",
        empty_label="Anyone",
        label="Coordinator",
    )
    sla = django_filters.ChoiceFilter(
        method="filter_sla",
        label="SLA",
        empty_label="Any SLA state",
        choices=[("overdue", "Overdue"), *SlaState.choices],
    )

    # A referral's page links here for all its copies and possible duplicates (it lists
    # the first few): the referral with those of the same patient and partner. Matched
    # on the patient, so only for those who may see patient details (clean_alike).
    alike = ReferralNumberFilter(
        method="filter_alike",
        label="Same patient and partner as referral #",
        min_value=1,
        max_value=2**63 - 1,
        widget=forms.HiddenInput,
    )

    class Meta:
        model = Referral
        fields = ["number", "status", "direction", "urgency", "provider"]
        form = QueueFilterForm

    @property
    def form(self) -> QueueFilterForm:
        form = cast(QueueFilterForm, super().form)
        # Who asks, for the filters that depend on it (QueueFilterForm.clean_alike).
        form.viewer = self.request.user if self.request is not None else None
        return form

    @property
    def alike_of(self) -> Referral | None:
        """The referral the list is matched to ("alike"), once the filters are read."""
        return getattr(self.form, "cleaned_data", {}).get("alike")

    def filter_alike(self, queryset: Any, name: str, referral: Referral) -> Any:
        alike = possible_duplicates(
            provider=referral.provider,
            patient_last_name=referral.patient_last_name,
            patient_dob=referral.patient_dob,
            direction=referral.direction,
            copies_of=referral.pk,
            around=referral.received_at,
        )
        return queryset.filter(pk__in=alike.values("pk"))

    @classmethod
    def for_queue(cls, params: QueryDict, **kwargs: Any) -> ReferralFilter:
        """The queue's filters as asked. An address that names none of them (the queue's
        own link, its page 2, the export from either) means the queue's default view:
        open referrals only. The filter form always sends its fields, so a form sent with
        "Open only" unticked shows closed ones too."""
        if not any(key in cls.base_filters for key in params):
            params = params.copy()
            params["open"] = "true"
        return cls(params, **kwargs)

    def filter_number(self, queryset: Any, name: str, value: str) -> Any:
        """A referral number, or the reference an office was shown when it sent the referral
        through its link (what it quotes on the phone)."""
        text = value.strip().lstrip("#").strip()
        pk = parse_id(text)
        if pk is not None:
            return queryset.filter(pk=pk)
        return queryset.filter(intake_submission__reference=text.upper())

    def filter_open(self, queryset: Any, name: str, value: bool) -> Any:
        # A referral's number (what an office quotes on the phone), statuses ticked and the
        # SLA state "Ended" (declined, cancelled or closed) are asked for by name: "Closed"
        # with "Open only" (ticked by default) would otherwise match nothing, with nothing
        # to say why.
        asked = self.form.cleaned_data
        if asked.get("number") or asked.get("status") or asked.get("sla") == SlaState.ENDED:
            return queryset
        return queryset.open() if value else queryset

    def filter_network(self, queryset: Any, name: str, value: str) -> Any:
        # As the leakage report counts: a patient the specialist declined, or whose
        # referral was cancelled, did not go there; nor did a copy of a referral sent
        # twice (marked as a duplicate, it has no cancel reason).
        return queryset.counted().outbound().went_ahead().filter(in_network=value == "true")

    def filter_sla(self, queryset: Any, name: str, value: str) -> Any:
        if value == "overdue":
            return queryset.overdue()
        return queryset.with_sla().filter(sla_state=value)

    def filter_counted(self, queryset: Any, name: str, value: bool) -> Any:
        return queryset.counted() if value else queryset

    def filter_mine(self, queryset: Any, name: str, value: bool) -> Any:
        return queryset.filter(Q(assigned_to=self.request.user)) if value else queryset


def parse_versions(values: list[str]) -> dict[int, datetime]:
    """The selected rows as `id:updated_at` tokens (what the page showed) → {id: version}."""
    versions: dict[int, datetime] = {}
    for value in values:
        pk, _, stamp = value.partition(":")
        try:
            version = datetime.fromisoformat(stamp)
        except ValueError:
            raise forms.ValidationError(
                "The selection was not understood; reload the page."
            ) from None
        row = parse_id(pk)
        if row is None or version.tzinfo is None:
            raise forms.ValidationError("The selection was not understood; reload the page.")
        versions[row] = version
    return versions


class RowTokensField(forms.MultipleChoiceField):
    """The ticked rows as tokens the page made, so any value is accepted here and parsed
    by the form (parse_versions)."""

    def valid_value(self, value: Any) -> bool:
        return True


class BulkActionForm(forms.Form):
    rows = RowTokensField(
        error_messages={"required": "Select at least one referral."},
        widget=forms.CheckboxSelectMultiple,
    )
    assign_to = UserChoiceField(
        queryset=coordinator_choices(),
        required=False,
        label="Assign to",
        empty_label="Keep coordinator",
    )
    unassign = forms.BooleanField(
        required=False,
        label="Unassign",
        widget=forms.CheckboxInput(attrs={"class": "form-check-input"}),
    )
    to_status = forms.ChoiceField(
        required=False,
        label="Move to",
        choices=[("", "Keep status"), *((s, Status(s).label) for s in BULK_STATUSES)],
    )
    # Sent to the referring offices: why they are declined or cancelled (required), or what
    # a hold waits for (optional).
    reason = forms.CharField(required=False, max_length=300, label="Reason")
    # Offered in the reason field (a <datalist>): every move's suggested words.
    reason_suggestions = tuple(
        text for status in BULK_STATUSES for text in REASON_SUGGESTIONS.get(status, ())
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in ("assign_to", "to_status"):
            self.fields[name].widget.attrs["class"] = "form-select form-select-sm"
        self.fields["reason"].widget.attrs.update(
            {"class": "form-control form-control-sm", "list": "bulk-reasons"}
        )

    def clean_rows(self) -> dict[int, datetime]:
        return parse_versions(self.cleaned_data["rows"])

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        if not (data.get("assign_to") or data.get("unassign") or data.get("to_status")):
            raise forms.ValidationError("Choose someone to assign to or a status to move to.")
        if data.get("assign_to") and data.get("unassign"):
            raise forms.ValidationError("Assign or unassign, not both.")
        # As it will be stored: invisible characters only are no reason.
        data["reason"] = strip_invisible(data.get("reason", "")).strip()
        if data.get("to_status") == Status.DECLINED and not data["reason"]:
            self.add_error("reason", "Say why the selected referrals are declined.")
        if data.get("to_status") == Status.CANCELLED and not data["reason"]:
            self.add_error("reason", "Say why the selected referrals are cancelled.")
        return data


class AssignForm(forms.Form):
    assignee = UserChoiceField(queryset=coordinator_choices(), required=False, empty_label="Nobody")
    version = forms.CharField(required=False, widget=forms.HiddenInput)

    def __init__(self, *args: Any, holder: int | None = None, **kwargs: Any) -> None:
        """`holder`: the referral's current coordinator, listed even when no longer on the
        list, so the select shows who holds it rather than "Nobody"."""
        super().__init__(*args, **kwargs)
        assignee = cast(UserChoiceField, self.fields["assignee"])
        if holder is not None:
            assignee.queryset = coordinator_choices(holder=holder)
        assignee.widget.attrs["class"] = "form-select form-select-sm"

    def clean_version(self) -> datetime | None:
        return parse_version(self, self.cleaned_data["version"])


class InquiryForm(forms.ModelForm):
    """An inquiry from a source other than a partner referral (those follow their referral)."""

    received_at = forms.DateTimeField(
        label="Received",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
    )

    class Meta:
        model = Inquiry
        fields = ["source", "received_at", "status", "note"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        source = cast(forms.ChoiceField, self.fields["source"])
        # Django keeps a field's choices as a list of pairs (the stubs allow any input form).
        offered = cast(list[tuple[str, str]], source.choices)
        source.choices = [
            choice for choice in offered if choice[0] != Inquiry.Source.PARTNER_REFERRAL
        ]
        if self.instance.pk is None:
            self.initial.setdefault(
                "received_at", timezone.localtime().replace(second=0, microsecond=0)
            )

    def clean_received_at(self) -> datetime:
        return not_in_future(self.cleaned_data["received_at"], "Received")
