"""Providers: the clinicians we refer with, their preferences, tier and health history."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import models, transaction
from django.db.models import Count, Exists, F, Max, OuterRef, Q, Subquery
from django.db.models.functions import TruncMonth
from django.urls import reverse
from django.utils import timezone
from simple_history.models import HistoricalRecords

from core.dates import twelve_months_start
from core.npi import validate_npi
from core.roles import is_liaison
from core.text import strip_invisible_from
from partners.models.organizations import Organization
from partners.models.removals import ProviderRemoval

if TYPE_CHECKING:
    from django.contrib.auth.models import User
    from django.db.models.deletion import Collector


def set_null_and_touch(
    collector: Collector, field: models.Field[Any, Any], sub_objs: Any, using: str
) -> None:
    """SET_NULL that also moves updated_at, in the delete's transaction: a partner's office
    is part of their row in the API, whose syncs read by updated_since, and an office the
    admin deletes would otherwise leave its partners without one, unannounced."""
    models.SET_NULL(collector, field, sub_objs, using)
    collector.add_field_update(
        sub_objs.model._meta.get_field("updated_at"), timezone.now(), sub_objs
    )


# Partners no automated letter goes to: they, or their office, opted out (the query form
# of Provider.letters_opted_out: a join, never a row at a time).
OPTED_OUT_OF_LETTERS = Q(letters_opt_out=True) | Q(organization__letters_opt_out=True)
# And of newsletters and invitations only (Provider.marketing_opted_out), as a filter.
OPTED_OUT_OF_MARKETING = Q(marketing_opt_out=True) | Q(organization__marketing_opt_out=True)


class ProviderQuerySet(models.QuerySet["Provider"]):
    def for_user(self, user: User, *, write: bool = False) -> ProviderQuerySet:
        """Every signed-in role may read the whole network; a liaison may change only the
        partners they own or nobody owns yet."""
        if not user.has_perm("partners.view_provider"):
            return self.none()
        if write:
            if not user.has_perm("partners.change_provider"):
                return self.none()
            if is_liaison(user):
                return self.filter(Q(owner=user) | Q(owner__isnull=True))
        return self

    def with_referral_stats(self) -> ProviderQuerySet:
        """Inbound referrals in the trailing 12 months and the date of the last one, as
        correlated subqueries so a paginated list computes them for its page only."""
        from referrals.models import Referral

        inbound = Referral.objects.counted().filter(
            provider=OuterRef("pk"), direction=Referral.Direction.INBOUND
        )
        since = twelve_months_start()
        return self.annotate(
            referrals_12m=Subquery(
                inbound.filter(received_at__gte=since)
                .order_by()
                .values("provider")
                .annotate(n=Count("*"))
                .values("n")[:1],
                output_field=models.IntegerField(),
            ),
            last_referral_at=Subquery(inbound.order_by("-received_at").values("received_at")[:1]),
        )

    def for_list(self) -> ProviderQuerySet:
        return self.select_related("organization", "owner").with_referral_stats()

    def with_reciprocity(
        self, *, since: datetime, until: datetime | None = None
    ) -> ProviderQuerySet:
        """Referrals received from (inbound) and sent to (outbound) each partner in
        [since, until), and the balance (sent - received), as one grouped join. Partners
        with no referrals either way in the period are left out."""
        # A copy cancelled as a duplicate is not a referral of the period: joined out, so a
        # partner who sent nothing else is not listed with nothing either way.
        period = Q(referrals__received_at__gte=since, referrals__duplicate_of__isnull=True)
        if until is not None:
            period &= Q(referrals__received_at__lt=until)
        return (
            self.filter(period)
            .annotate(
                received=Count("referrals", filter=Q(referrals__direction="inbound")),
                sent=Count("referrals", filter=Q(referrals__direction="outbound")),
            )
            .annotate(balance=F("sent") - F("received"))
        )

    def opted_out_of_letters(self) -> ProviderQuerySet:
        return self.filter(OPTED_OUT_OF_LETTERS)

    def npi_deactivated(self, deactivated: bool = True) -> ProviderQuerySet:
        """Partners whose NPI the NPPES registry lists as deactivated (retired, moved away,
        died), or, with `deactivated=False`, all the others: none are until the registry
        is loaded."""
        from registry.models import RegistryProvider  # registry builds on partners

        listed = Exists(RegistryProvider.objects.filter(npi=OuterRef("npi"), deactivated=True))
        return self.filter(listed if deactivated else ~listed)

    def taking_letters(self) -> ProviderQuerySet:
        # Partners without an office stay in: exclude() keeps the rows the join left empty.
        return self.exclude(OPTED_OUT_OF_LETTERS)

    def search(self, text: str) -> ProviderQuerySet:
        query = Q()
        # Postgres text cannot hold NUL bytes: a pasted or hostile one would be a 500.
        # Words as a name is shown ("Ann Wiebe, MD"): the comma is not part of one.
        words = [word.strip(",.;:") for word in text.replace("\x00", "").split()]
        for word in filter(None, words):
            query &= (
                Q(last_name__icontains=word)
                | Q(first_name__icontains=word)
                | Q(credential__iexact=word)
                | Q(npi__startswith=word)
                | Q(specialty__icontains=word)
                | Q(organization__name__icontains=word)
            )
        return self.filter(query)

    def delete(self) -> tuple[int, dict[str, int]]:
        """Delete these partners, leaving a ProviderRemoval for each in the same
        transaction (the admin's delete action comes here), so API syncs learn of it."""
        with transaction.atomic(using=self.db):
            # Locked, so the removals recorded are exactly the rows deleted.
            gone = list(self.select_for_update(of=("self",)).values_list("pk", "npi"))
            now = timezone.now()
            ProviderRemoval.objects.using(self.db).bulk_create(
                ProviderRemoval(
                    provider_id=pk, npi=npi, removed_at=now, reason=ProviderRemoval.Reason.DELETED
                )
                for pk, npi in gone
            )
            # Django's delete of just those rows (a row added since is not one of them).
            return super(ProviderQuerySet, self.filter(pk__in=[pk for pk, _ in gone])).delete()


class PreferredChannel(models.TextChoices):
    EMAIL = "email", "Email"
    FAX = "fax", "Fax"
    MAIL = "mail", "Mail"
    PORTAL = "portal", "Portal"


class ReportCadence(models.TextChoices):
    EACH = "each", "Each report as it is sent"
    WEEKLY = "weekly", "A weekly summary"
    MONTHLY = "monthly", "A monthly summary"


class ThankYouBy(models.TextChoices):
    LETTER = "letter", "Letter"
    CALL = "call", "Call (a task for the relationship owner)"


@dataclass(frozen=True)
class ReferralFigures:
    """A partner's referral counts (`Provider.referral_figures`)."""

    inbound: int
    outbound: int
    # Since the period's start: what they sent us and what we sent them.
    received: int
    sent: int
    last_inbound_at: datetime | None

    @property
    def balance(self) -> int:
        """Sent minus received over the period: positive when we send more."""
        return self.sent - self.received


# Fields the nightly tiering and health check keep, each with a history of its own.
SYSTEM_KEPT_FIELDS = [
    "tier",
    "tier_pinned",
    "tier_pinned_until",
    "health",
    "health_reasons",
    "health_checked_at",
    "health_assessed_at",
    "created_at",
    "updated_at",
]


class Provider(models.Model):
    """An individual clinician we have, or want, a referral relationship with."""

    PreferredChannel = PreferredChannel
    ThankYouBy = ThankYouBy
    ReportCadence = ReportCadence

    class Status(models.TextChoices):
        PROSPECT = "prospect", "Prospect"
        ACTIVE = "active", "Active"
        DORMANT = "dormant", "Dormant"

    class Tier(models.TextChoices):
        A = "A", "A: top referrer"
        B = "B", "B: steady referrer"
        C = "C", "C: occasional referrer"

    class Health(models.TextChoices):
        ACTIVE = "active", "Active"
        AT_RISK = "at_risk", "At risk"
        DORMANT = "dormant", "Dormant"
        NEW = "new", "No referrals yet"

    npi = models.CharField(
        "NPI",
        max_length=10,
        unique=True,
        validators=[validate_npi],
        help_text="The 10-digit individual (type-1) NPI.",
    )
    first_name = models.CharField(max_length=100)
    last_name = models.CharField(max_length=100)
    credential = models.CharField(max_length=50, blank=True, help_text="e.g. MD, DO, NP, PA-C")
    taxonomy_code = models.CharField(
        "NUCC taxonomy code", max_length=10, blank=True, help_text="e.g. 207Q00000X"
    )
    specialty = models.CharField(max_length=200, blank=True)
    organization = models.ForeignKey(
        Organization,
        on_delete=set_null_and_touch,
        null=True,
        blank=True,
        related_name="providers",
    )
    phone = models.CharField(max_length=30, blank=True)
    email = models.EmailField(blank=True)
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="owned_providers",
        verbose_name="relationship owner",
        help_text="The liaison who looks after this relationship.",
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PROSPECT)
    tier = models.CharField(max_length=1, choices=Tier.choices, blank=True)
    in_network = models.BooleanField(
        "in network",
        default=False,
        help_text="A preferred partner we refer our patients to; others count as leakage.",
    )
    # A manager's override pins the tier: nightly tiering leaves it alone until
    # tier_pinned_until has passed (or, with no date, until a manager clears the pin).
    tier_pinned = models.BooleanField("tier set by a manager", default=False)
    tier_pinned_until = models.DateField("tier kept until", null=True, blank=True)
    # Written by the nightly assessment (partners.services.health.providers_assess_health): the
    # status and the facts behind it as reason codes, rendered to words by a template.
    health = models.CharField(max_length=10, choices=Health.choices, default=Health.NEW)
    health_reasons = models.JSONField(default=list, blank=True)
    # When the status or its reasons last moved, and when the assessment last ran at all:
    # a touch logged since the last run is the one "tonight's assessment counts".
    health_checked_at = models.DateTimeField(null=True, blank=True)
    health_assessed_at = models.DateTimeField(null=True, blank=True, editable=False)
    notes = models.TextField(blank=True)
    # Communication preferences are plain fields, not a separate model: every partner has
    # exactly one set, every automated message reads them, and the letter pipeline gets
    # them with the provider row it already loads (no extra join, no missing-row case).
    preferred_channel = models.CharField(
        "send letters by",
        max_length=10,
        choices=PreferredChannel.choices,
        default=PreferredChannel.EMAIL,
        help_text="Email goes out over SMTP; fax and mail go to the print queue as PDFs; "
        "portal sends a Direct secure message to the partner's Direct address in the NPPES "
        "registry (email, then fax, then mail when there is none).",
    )
    report_cadence = models.CharField(
        "consult report cover letters",
        max_length=10,
        choices=ReportCadence.choices,
        default=ReportCadence.EACH,
        help_text="A weekly or monthly summary lists the period's reports in one letter "
        "instead of a cover letter for each.",
    )
    thank_you_by = models.CharField(
        "thank them by",
        max_length=10,
        choices=ThankYouBy.choices,
        default=ThankYouBy.LETTER,
        help_text="A call task for the personal touch instead of a thank-you letter.",
    )
    letters_opt_out = models.BooleanField(
        "opted out of letters",
        default=False,
        help_text="No automated acknowledgments, notices, thank-yous or cover letters.",
    )
    # "Take me off your mailing list": not a wish to hear nothing about their patients
    # (outreach.models.letters.MARKETING_KINDS).
    marketing_opt_out = models.BooleanField(
        "opted out of newsletters and invitations",
        default=False,
        help_text="No newsletters, rekindle notes or event reminders; the letters about the "
        "patients they send still go.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = ProviderQuerySet.as_manager()
    # Who changed the record, what from and to (partners/history.py). Tier and health keep
    # their own history with the reasons (TierChange, HealthChange), written nightly in
    # bulk; the Changes page weaves them in (tier_and_health_changes) rather than have
    # every night's check add a row of the whole record here.
    history = HistoricalRecords(excluded_fields=SYSTEM_KEPT_FIELDS)

    class Meta:
        # The id last: namesakes (two Dr. John Smiths) must keep one order from page to page.
        ordering = ["last_name", "first_name", "pk"]
        permissions = [
            ("change_tier", "Can change a partner's tier"),
            ("merge_partners", "Can merge duplicate partners and offices"),
            ("import_partners", "Can import partners from a spreadsheet"),
            ("export_partners", "Can export partners to a spreadsheet"),
        ]
        indexes = [
            # The provider list sorts and searches by name.
            models.Index(fields=["last_name", "first_name"], name="provider_name_idx"),
            # The partner list and the rekindle work filter on health.
            models.Index(fields=["health", "last_name"], name="provider_health_idx"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=Q(tier__in=["", "A", "B", "C"]), name="provider_tier_valid"
            ),
            # An expiry date only means something on a pinned tier.
            models.CheckConstraint(
                condition=Q(tier_pinned=True) | Q(tier_pinned_until__isnull=True),
                name="provider_pin_date_needs_pin",
            ),
        ]

    def __str__(self) -> str:
        return self.display_name

    def get_absolute_url(self) -> str:
        return reverse("partners:provider_detail", args=[self.pk])

    def delete(
        self,
        using: Any | None = None,
        keep_parents: bool = False,
        *,
        merged_into: Provider | None = None,
    ) -> tuple[int, dict[str, int]]:
        """Delete this partner (or, with `merged_into`, finish merging it into that one),
        leaving a ProviderRemoval in the same transaction so API syncs learn of it."""
        merged = merged_into is not None
        with transaction.atomic(using=using):
            ProviderRemoval.objects.using(using).create(
                provider_id=self.pk,
                npi=self.npi,
                removed_at=timezone.now(),
                reason=ProviderRemoval.Reason.MERGED if merged else ProviderRemoval.Reason.DELETED,
                merged_into=merged_into.pk if merged_into is not None else None,
            )
            return super().delete(using=using, keep_parents=keep_parents)

    def clean(self) -> None:
        # A right-to-left override pasted into a name would draw it backwards in every list.
        strip_invisible_from(self, ("first_name", "last_name", "credential", "specialty"))

    @property
    def display_name(self) -> str:
        name = f"{self.first_name} {self.last_name}".strip()
        return f"{name}, {self.credential}" if self.credential else name

    @property
    def fax(self) -> str:
        return self.organization.fax if self.organization else ""

    @property
    def tier_pin_holds(self) -> bool:
        return self.tier_pinned and (
            self.tier_pinned_until is None or self.tier_pinned_until >= timezone.localdate()
        )

    def referral_figures(self, *, since: datetime) -> ReferralFigures:
        """The partner 360's figures in one aggregate: referrals each way ever and since
        `since`, and the last one they sent. Counting received_at (never null) lets the
        (provider, direction, received_at) index answer without reading the rows. These
        are counts about the partner, not patient data, so every role that may open the
        partner sees the same numbers."""
        from referrals.models import Referral

        inbound = Q(direction=Referral.Direction.INBOUND)
        outbound = Q(direction=Referral.Direction.OUTBOUND)
        recent = Q(received_at__gte=since)
        figures = (
            Referral.objects.counted()
            .filter(provider=self)
            .aggregate(
                inbound=Count("received_at", filter=inbound),
                outbound=Count("received_at", filter=outbound),
                received=Count("received_at", filter=inbound & recent),
                sent=Count("received_at", filter=outbound & recent),
                last_inbound_at=Max("received_at", filter=inbound),
            )
        )
        return ReferralFigures(**figures)

    def monthly_inbound(self, *, months: int = 12) -> list[tuple[date, int]]:
        """Inbound referrals per calendar month, oldest first, for the last `months` months
        including this one: one grouped query, months without referrals as zero."""
        today = timezone.localdate()
        first = today.replace(day=1)
        for _ in range(months - 1):
            first = (first - timedelta(days=1)).replace(day=1)
        start = timezone.make_aware(datetime.combine(first, time.min))
        counts = {
            timezone.localtime(row["month"]).date(): row["n"]
            for row in self.referrals.counted()
            .filter(direction="inbound", received_at__gte=start)
            .annotate(month=TruncMonth("received_at"))
            .order_by()
            .values("month")
            .annotate(n=Count("*"))
        }
        result = []
        month = first
        for _ in range(months):
            result.append((month, counts.get(month, 0)))
            month = (month + timedelta(days=32)).replace(day=1)
        return result

    @property
    def office_opted_out(self) -> bool:
        """Their office opted out of letters for all its partners. Load the partner with
        its organization (select_related) where many are checked."""
        return self.organization is not None and self.organization.letters_opt_out

    @property
    def office_marketing_opted_out(self) -> bool:
        """Their office opted out of newsletters and invitations for all its partners."""
        return self.organization is not None and self.organization.marketing_opt_out

    @property
    def marketing_opted_out(self) -> bool:
        """They, or their office, want no newsletters, rekindle notes or event reminders
        (outreach.models.letters.MARKETING_KINDS)."""
        return self.marketing_opt_out or self.office_marketing_opted_out

    @property
    def letters_opted_out(self) -> bool:
        """No automated letter of any kind goes to this partner: they opted out, or their
        office did. Every letter checks this, when written and again at delivery."""
        return self.letters_opt_out or self.office_opted_out

    @property
    def contact_email(self) -> str:
        if self.email:
            return self.email
        return self.organization.email if self.organization else ""


class TierChange(models.Model):
    """History of a provider's tier: every change, by whom and why. changed_by is empty for
    the nightly tiering."""

    class Kind(models.TextChoices):
        NIGHTLY = "nightly", "Nightly tiering"
        OVERRIDE = "override", "Set by a manager"
        PIN_CLEARED = "pin_cleared", "Returned to nightly tiering"

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="tier_changes")
    kind = models.CharField(max_length=12, choices=Kind.choices, default=Kind.OVERRIDE)
    from_tier = models.CharField(max_length=1, blank=True)
    to_tier = models.CharField(max_length=1, blank=True)
    pinned_until = models.DateField(null=True, blank=True)
    reason = models.CharField(max_length=300)
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True
    )
    changed_at = models.DateTimeField()

    class Meta:
        ordering = ["-changed_at"]

    def __str__(self) -> str:
        return f"{self.provider}: {self.from_tier or '-'} → {self.to_tier or '-'}"


class HealthChange(models.Model):
    """History of a provider's relationship health: one row each time the nightly
    assessment moves it, with the reasons that held at that moment."""

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="health_changes")
    from_health = models.CharField(max_length=10, choices=Provider.Health.choices, blank=True)
    to_health = models.CharField(max_length=10, choices=Provider.Health.choices)
    reasons = models.JSONField(default=list, blank=True)
    changed_at = models.DateTimeField()

    class Meta:
        ordering = ["-changed_at", "-pk"]

    def __str__(self) -> str:
        return f"{self.provider_id}: {self.from_health or '-'} → {self.to_health}"
