"""Fill an empty database with a realistic practice for demos and manual testing."""

from __future__ import annotations

import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import factory.random
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from core.factories import DEMO_PASSWORD, UserFactory
from core.roles import Role, sync_roles
from outreach.models import Activity, Letter, Task
from outreach.services.loop import thank_you_prepare
from partners.factories import OrganizationFactory, ProviderFactory, StaffMemberFactory
from partners.models import Provider
from referrals.factories import REASONS
from referrals.models import REASON_SUGGESTIONS, Inquiry, Referral, ReferralEvent, Status

DEMO_USERS = [
    ("manager", "Maria", "Lopez", Role.MANAGER),
    ("liaison", "Jamie", "Carter", Role.LIAISON),
    ("liaison2", "Sam", "Patel", Role.LIAISON),
    ("coordinator", "Dana", "Brooks", Role.COORDINATOR),
    ("admin", "Alex", "Morgan", Role.ADMINISTRATOR),
]

# A dormant partner's referrals are at least this old.
DORMANT_AFTER = timedelta(days=200)
# The demo practice's own clinicians, as `make run` sets PRACTICE_NPIS: CMS shared patient
# patterns on partners' pages mark the pairs that end with them.
DEMO_CLINICIAN_NPIS = ["1245319599", "1093718926"]
# Typical journeys of a referral, the last status being where it rests.
CLOSED_PATHS = [
    *[[Status.ACCEPTED, Status.SCHEDULED, Status.SEEN, Status.REPORT_SENT, Status.CLOSED]] * 6,
    [Status.ACCEPTED, Status.SCHEDULED, Status.NO_SHOW, Status.CLOSED],
    [Status.DECLINED, Status.CLOSED],
    [Status.CANCELLED, Status.CLOSED],
]
OPEN_PATHS = [
    [],
    [Status.ACCEPTED],
    [Status.ACCEPTED, Status.SCHEDULED],
    [Status.ACCEPTED, Status.SCHEDULED, Status.SEEN],
    [Status.ACCEPTED, Status.SCHEDULED, Status.SEEN, Status.REPORT_SENT],
    [Status.ON_HOLD],
]
OUT_OF_NETWORK_REASONS = [
    "The patient's insurance requires this specialist.",
    "Patient preference: closer to home.",
    "No in-network specialist has an opening within a month.",
]
# Inquiries from other sources: how many over the demo's 18 months, and the share that
# become new patients (lower than referred patients, as practices find).
OTHER_SOURCES = [
    (Inquiry.Source.WEB, 90, 0.24),
    (Inquiry.Source.ADVERTISING, 60, 0.12),
    (Inquiry.Source.INSURANCE_DIRECTORY, 45, 0.2),
    (Inquiry.Source.SELF, 35, 0.35),
    (Inquiry.Source.OTHER, 15, 0.18),
]
INQUIRY_NOTES = {
    Inquiry.Source.WEB: ["Online appointment request", "Contact form on the website", ""],
    Inquiry.Source.ADVERTISING: ["Called from the radio spot", "Billboard on Route 9", ""],
    Inquiry.Source.INSURANCE_DIRECTORY: ["Found us in the plan's directory", ""],
    Inquiry.Source.SELF: ["Walk-in", "A neighbour recommended us", ""],
    Inquiry.Source.OTHER: ["Community health fair", ""],
}
NOTES = [
    "Met with the office manager; they asked for our new-patient wait times.",
    "Dropped off referral pads and the updated fax cover sheet.",
    "Lunch with the front desk team; they prefer faxed updates over email.",
    "Dr. mentioned two patients waiting for ortho consults; sent our direct line.",
    "Discussed delays in receiving consult notes; promised a follow-up.",
    "Quick drop-in; coordinator on vacation until next week.",
]
NEXT_STEPS = [
    "Send consult-note turnaround report",
    "Bring lunch for the staff",
    "Introduce our new sports-medicine physician",
    "Follow up on delayed consult notes",
    "Invite to the annual referral-partner dinner",
]


class Command(BaseCommand):
    help = "Create a demo practice: users for each role, partners, referrals, activities, tasks."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--if-empty", action="store_true", help="Do nothing if users exist.")
        parser.add_argument("--print-password", action="store_true")
        parser.add_argument("--print-clinician-npis", action="store_true")
        parser.add_argument("--seed", type=int, default=2026)
        parser.add_argument("--referrals", type=int, default=420)

    def handle(self, *args: Any, **options: Any) -> None:
        if options["print_password"]:
            self.stdout.write(DEMO_PASSWORD)
            return
        if options["print_clinician_npis"]:
            self.stdout.write(",".join(DEMO_CLINICIAN_NPIS))
            return
        if options["if_empty"] and get_user_model().objects.exists():
            self.stdout.write("Demo data: the database already has users; leaving it as it is.")
            return
        rng = random.Random(options["seed"])
        factory.random.reseed_random(options["seed"])
        with transaction.atomic():
            users = self._users()
            providers = self._network(rng, users)
            self._referrals(rng, providers, users, options["referrals"])
            self._faxed_twice(users)
            self._activities(rng, providers, users)
            self._tiers(users["manager"])
            self._field_work(users)
            self._shared_patients(rng, providers)
        self._close_loops()
        self.stdout.write(
            self.style.SUCCESS(
                f"Demo data: {len(providers)} partners, {Referral.objects.count()} referrals, "
                f"{Activity.objects.count()} activities, {Task.objects.count()} tasks."
            )
        )

    def _faxed_twice(self, users: dict[str, Any]) -> None:
        """A referral faxed yesterday by the busiest active partner and phoned in again an hour
        later: the second one's page flags the possible duplicate, to be marked as the
        copy (or not)."""
        from referrals.services.workflow import referral_log

        busiest = (
            Provider.objects.filter(
                status=Provider.Status.ACTIVE, referrals__direction=Referral.Direction.INBOUND
            )
            .annotate(n=Count("referrals"))
            .order_by("-n", "pk")
            .first()
        )
        if busiest is None:
            return
        faxed_at = timezone.now() - timedelta(days=1)
        for channel, received_at in (
            (Referral.Channel.FAX, faxed_at),
            (Referral.Channel.PHONE, faxed_at + timedelta(hours=1)),
        ):
            referral = Referral(
                provider=busiest,
                patient_first_name="Ruth",
                patient_last_name="Olsen",
                patient_dob=datetime(1950, 4, 2).date(),
                patient_phone="(402) 555-0142",
                reason="Right knee pain for three months; X-ray attached.",
                channel=channel,
                received_at=received_at,
                assigned_to=users["coordinator"],
            )
            referral_log(referral=referral, actor=users["coordinator"])

    def _field_work(self, users: dict[str, Any]) -> None:
        """Today's plan for the first liaison, this year's gifts and meals limit and an
        upcoming annual meeting, so the field pages have something to show."""
        from outreach.models import ComplianceLimit, Event
        from outreach.services.day_plan import planned_visit_add
        from outreach.services.events import event_invite
        from partners.models import Organization

        today = timezone.localdate()
        # A demo figure: the practice enters each year's amount as CMS publishes it.
        ComplianceLimit.objects.get_or_create(year=today.year, defaults={"amount": 519})
        offices = Organization.objects.filter(providers__owner=users["liaison"]).distinct()
        for office in offices[:4]:
            planned_visit_add(liaison=users["liaison"], organization=office, day=today)
        # Two birthdays at the liaison's offices this week (the dashboard and the digest).
        for days_ahead, office in zip((1, 4), offices[:2], strict=False):
            member = office.staff.order_by("pk").first()
            if member is not None:
                member.birthday = (today + timedelta(days=days_ahead)).replace(year=1988)
                member.save(update_fields=["birthday"])
        event = Event.objects.create(
            name="Annual referral-partner dinner",
            kind=Event.Kind.ANNUAL_MEETING,
            starts_at=timezone.now().replace(hour=23, minute=0) + timedelta(days=21),
            place="Riverside Country Club",
            organizer=users["manager"],
        )
        for office in offices[:3]:
            event_invite(event=event, providers=office.providers.all(), staff=office.staff.all())

    def _shared_patients(self, rng: random.Random, providers: list[Provider]) -> None:
        """A made-up year of CMS shared patient patterns among the demo partners and our
        clinicians (the real file is national and loaded with import_shared_patients)."""
        from registry.models import SharedPatientDataset, SharedPatientPair

        dataset = SharedPatientDataset.objects.create(
            year=timezone.localdate().year - 2,
            window_days=SharedPatientDataset.Window.DAYS_30,
            file_name="demo data (made up)",
            imported_at=timezone.now(),
        )
        pairs: dict[tuple[str, str], SharedPatientPair] = {}
        for provider in providers:
            others = [other.npi for other in rng.sample(providers, 4) if other != provider]
            for npi_to in [*others[: rng.randint(1, 3)], *DEMO_CLINICIAN_NPIS[: rng.randint(0, 2)]]:
                patients = rng.randint(11, 60)
                pairs[(provider.npi, npi_to)] = SharedPatientPair(
                    dataset=dataset,
                    npi_from=provider.npi,
                    npi_to=npi_to,
                    patients=patients,
                    shared_count=patients * rng.randint(2, 5),
                    same_day_visits=rng.randint(0, patients // 3),
                )
        SharedPatientPair.objects.bulk_create(pairs.values())
        dataset.pair_count = len(pairs)
        dataset.save(update_fields=["pair_count"])

    def _users(self) -> dict[str, Any]:
        sync_roles()
        return {
            username: UserFactory(username=username, first_name=first, last_name=last, role=role)
            for username, first, last, role in DEMO_USERS
        }

    def _network(self, rng: random.Random, users: dict[str, Any]) -> list[Provider]:
        liaisons = [users["liaison"], users["liaison2"]]
        providers: list[Provider] = []
        for index in range(18):
            organization = OrganizationFactory()
            StaffMemberFactory.create_batch(rng.randint(1, 3), organization=organization)
            for _ in range(rng.randint(1, 4)):
                providers.append(
                    ProviderFactory.create(
                        organization=organization,
                        owner=liaisons[index % 2],
                        status=rng.choice(
                            [Provider.Status.ACTIVE] * 4
                            + [Provider.Status.PROSPECT, Provider.Status.DORMANT]
                        ),
                        # The preferred network we send patients to: most, not all.
                        in_network=rng.random() < 0.7,
                    )
                )
        return providers

    def _referrals(
        self, rng: random.Random, providers: list[Provider], users: dict[str, Any], count: int
    ) -> None:
        now = timezone.now()
        # A few partners send most referrals (the 80/20 every practice sees).
        weights = [1 / (rank + 1) ** 1.1 for rank in range(len(providers))]
        referrals = []
        plans = []
        # A prospect has never referred; a dormant partner used to, and has not for over half
        # a year (what the statuses mean, so the demo's agree with its history and with the
        # computed health).
        prospects = {p.pk for p in providers if p.status == Provider.Status.PROSPECT}
        weights = [0 if p.pk in prospects else w for p, w in zip(providers, weights, strict=True)]
        preferred = [p for p in providers if p.in_network and p.pk not in prospects]
        late_report_shown = False
        for _ in range(count):
            provider = rng.choices(providers, weights)[0]
            age = timedelta(days=rng.uniform(0, 548), hours=rng.uniform(0, 8))
            received = now - age
            is_old = age > timedelta(days=45)
            path = rng.choice(CLOSED_PATHS if is_old else OPEN_PATHS)
            outbound = rng.random() < 0.15
            if outbound and preferred and rng.random() < 0.8:
                provider = rng.choice(preferred)  # mostly to the preferred network
            if provider.status == Provider.Status.DORMANT and age < DORMANT_AFTER:
                age += DORMANT_AFTER
                received = now - age
                is_old = True
                path = rng.choice(CLOSED_PATHS)
            elif outbound and not late_report_shown:
                # One patient sent out some six weeks ago and seen at least 26 days ago
                # (its steps take at most two weeks), whose consult report is late: the
                # demo shows its reminder (made in _close_loops).
                received = now - timedelta(days=40)
                path = [Status.ACCEPTED, Status.SCHEDULED, Status.SEEN]
                late_report_shown = True
            referral = Referral(
                direction=Referral.Direction.OUTBOUND if outbound else Referral.Direction.INBOUND,
                provider=provider,
                patient_first_name=rng.choice(
                    [
                        "Ava",
                        "Liam",
                        "Noah",
                        "Emma",
                        "Mia",
                        "Owen",
                        "Ruth",
                        "Walter",
                        "Grace",
                        "Henry",
                    ]
                ),
                patient_last_name=rng.choice(
                    [
                        "Nguyen",
                        "Olsen",
                        "Baker",
                        "Reyes",
                        "Kim",
                        "Schultz",
                        "Hughes",
                        "Franklin",
                        "Ortiz",
                    ]
                ),
                patient_dob=(now - timedelta(days=rng.randint(2 * 365, 90 * 365))).date(),
                patient_phone=f"(402) 555-{rng.randint(0, 9999):04d}",
                reason=rng.choice(REASONS),
                urgency=rng.choice(["routine"] * 8 + ["urgent", "stat"]),
                # We send a patient out by fax, phone or an e-referral, never by walk-in.
                channel=rng.choice(
                    [Referral.Channel.FAX, Referral.Channel.PHONE, Referral.Channel.E_REFERRAL]
                    if outbound
                    else Referral.Channel.values
                ),
                received_at=received,
                assigned_to=users["coordinator"],
                created_by=users["coordinator"],
                status=path[-1] if path else Status.RECEIVED,
            )
            # First answered within hours, later steps days apart, and nothing after today:
            # a recent referral is only as far along as the time since it came allows.
            gaps = [timedelta(hours=rng.uniform(1, 40))]
            gaps += [timedelta(days=rng.uniform(1, 6)) for _ in path[1:]]
            steps: list[datetime] = []
            for gap in gaps[: len(path)]:
                steps.append((steps[-1] if steps else received) + gap)
            while path and steps[-1] > now:
                path, steps = path[:-1], steps[:-1]
            referral.status = path[-1] if path else Status.RECEIVED
            for index, (status, at) in enumerate(zip(path, steps, strict=True)):
                if status == Status.DECLINED:
                    referral.decline_reason = rng.choice(REASON_SUGGESTIONS[Status.DECLINED])
                if status == Status.CANCELLED:
                    referral.cancel_reason = rng.choice(REASON_SUGGESTIONS[Status.CANCELLED])
                if status == Status.SCHEDULED:
                    # Booked for the day of the next step (a patient is seen on the day), or
                    # for a day ahead when that step has not come yet.
                    referral.appointment_at = (
                        steps[index + 1]
                        if index + 1 < len(steps)
                        else at + timedelta(days=rng.uniform(2, 14))
                    )
                if status == Status.SEEN:
                    referral.seen_at = at
                if status == Status.REPORT_SENT and outbound:
                    # For a referral sent out, this step is the specialist's report back.
                    referral.report_received_at = at
                if status == Status.CLOSED:
                    referral.closed_at = at
            if path:
                # Any answer to a new referral is its first contact (as referral_transition does).
                referral.contacted_at = steps[0]
            if referral.direction == Referral.Direction.OUTBOUND:
                # Snapshot taken when a patient is sent, as referral_log does.
                referral.in_network = provider.in_network
                if not provider.in_network:
                    referral.out_of_network_reason = rng.choice(OUT_OF_NETWORK_REASONS)
            referrals.append(referral)
            plans.append((path, steps))
        Referral.objects.bulk_create(referrals)
        events = []
        for referral, (path, steps) in zip(referrals, plans, strict=True):
            events.append(
                ReferralEvent(
                    referral=referral,
                    to_status=Status.RECEIVED,
                    at=referral.received_at,
                    actor=users["coordinator"],
                )
            )
            previous = Status.RECEIVED
            for status, at in zip(path, steps, strict=True):
                events.append(
                    ReferralEvent(
                        referral=referral,
                        from_status=previous,
                        to_status=status,
                        at=min(at, timezone.now()),
                        actor=users["coordinator"],
                    )
                )
                previous = status
        ReferralEvent.objects.bulk_create(events)
        self._inquiries(rng, referrals, plans, users)

    def _inquiries(
        self,
        rng: random.Random,
        referrals: list[Referral],
        plans: Sequence[tuple[Sequence[str], Sequence[Any]]],
        users: dict[str, Any],
    ) -> None:
        """The new-patient funnel: every inbound referral's inquiry at its referral's stage
        (as referral_log and referral_transition keep it), and inquiries from the other
        sources, which convert less often, so the conversion report has a story to tell."""
        now = timezone.now()
        inquiries = []
        for referral, (path, steps) in zip(referrals, plans, strict=True):
            if referral.direction != Referral.Direction.INBOUND:
                continue
            inquiry = Inquiry(
                source=Inquiry.Source.PARTNER_REFERRAL,
                referral=referral,
                received_at=referral.received_at,
                created_by=users["coordinator"],
            )
            for status, at in zip(path, steps, strict=True):
                if status == Status.SCHEDULED:
                    inquiry.status, inquiry.scheduled_at = Inquiry.Status.SCHEDULED, at
                elif status == Status.SEEN:
                    inquiry.status, inquiry.seen_at = Inquiry.Status.SEEN_NEW_PATIENT, at
                elif status in (Status.DECLINED, Status.CANCELLED):
                    inquiry.status, inquiry.lost_at = Inquiry.Status.LOST, at
            inquiries.append(inquiry)
        for source, count, seen_share in OTHER_SOURCES:
            for _ in range(count):
                received = now - timedelta(days=rng.uniform(0, 548))
                inquiry = Inquiry(
                    source=source,
                    received_at=received,
                    created_by=users["coordinator"],
                    note=rng.choice(INQUIRY_NOTES[source]),
                )
                roll = rng.random()
                if now - received < timedelta(days=7) and roll < 0.5:
                    pass  # still an open inquiry
                elif roll < seen_share:
                    inquiry.status = Inquiry.Status.SEEN_NEW_PATIENT
                    inquiry.scheduled_at = received + timedelta(days=rng.uniform(1, 6))
                    inquiry.seen_at = inquiry.scheduled_at + timedelta(days=rng.uniform(3, 20))
                elif roll < seen_share + 0.12:
                    inquiry.status = Inquiry.Status.SCHEDULED
                    inquiry.scheduled_at = received + timedelta(days=rng.uniform(1, 6))
                else:
                    inquiry.status = Inquiry.Status.LOST
                    inquiry.lost_at = received + timedelta(days=rng.uniform(1, 14))
                for stamp in ("scheduled_at", "seen_at", "lost_at"):
                    if (getattr(inquiry, stamp) or now) > now:
                        setattr(inquiry, stamp, now)
                inquiries.append(inquiry)
        Inquiry.objects.bulk_create(inquiries)

    def _activities(
        self, rng: random.Random, providers: list[Provider], users: dict[str, Any]
    ) -> None:
        now = timezone.now()
        today = timezone.localdate()
        for _ in range(160):
            provider = rng.choice(providers)
            when = now - timedelta(days=rng.uniform(0, 548))
            recent = now - when < timedelta(days=21)
            activity = Activity.objects.create(
                kind=rng.choice(["visit", "visit", "drop_in", "call", "lunch", "meeting"]),
                occurred_at=when,
                logged_by=provider.owner,
                organization=provider.organization,
                notes=rng.choice(NOTES),
                next_step=rng.choice(NEXT_STEPS) if recent or rng.random() < 0.3 else "",
                next_step_due=(today + timedelta(days=rng.randint(-3, 14))) if recent else None,
            )
            activity.providers.add(provider)
            if activity.next_step and activity.next_step_due:
                Task.objects.create(
                    kind=Task.Kind.FOLLOW_UP,
                    title=activity.next_step,
                    due_on=activity.next_step_due,
                    assignee=provider.owner,
                    provider=provider,
                    activity=activity,
                )

    def _tiers(self, manager: Any) -> None:
        # The nightly assessment, run once now so the demo opens with tiers, health and the
        # rekindle queue (partners whose referrals dropped or stopped, nobody in touch).
        from outreach.services.rekindle import rekindle_queue_build
        from partners.services.health import providers_assess_health
        from partners.services.tiers import providers_retier

        today = timezone.localdate()
        providers_retier(as_of=today)
        providers_assess_health(as_of=today)
        rekindle_queue_build()

    def _close_loops(self) -> None:
        """Thank-yous for every seen inbound referral, the older ones already sent; and a
        reminder for each consult report that is late (as the nightly task would make)."""
        from referrals.services.consult_reports import consult_report_reminders_create

        consult_report_reminders_create()
        today = timezone.localdate()
        seen = Referral.objects.inbound().filter(seen_at__isnull=False).values_list("pk", flat=True)
        for referral_id in seen:
            thank_you_prepare(referral_id=referral_id)
        week_ago = today - timedelta(days=7)
        Letter.objects.filter(due_on__lt=week_ago).update(
            status=Letter.Status.SENT, channel=Letter.Channel.EMAIL, sent_at=timezone.now()
        )
        Task.objects.filter(kind=Task.Kind.THANK_YOU, due_on__lt=week_ago).update(
            status=Task.Status.DONE, completed_at=timezone.now()
        )
