"""Permission-aware lookups: the only way views fetch a referral from user input."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from statistics import median
from typing import Any

from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.db.models import (
    BooleanField,
    Count,
    ExpressionWrapper,
    F,
    Q,
    Window,
)
from django.db.models.functions import Lower, RowNumber, Trim, Trunc
from django.utils import timezone

from core.lookups import get_for_user
from partners.models import Provider
from referrals.models import (
    Referral,
    ReferralQuerySet,
    SlaState,
    SlaTarget,
    Status,
    Urgency,
)


def get_referral_for_user(
    user: User,
    pk: int,
    *,
    write: bool = False,
    related: tuple[str, ...] = (),
    with_sla: bool = False,
) -> Referral:
    """The referral, if this user may read it (or change it, with `write`), with its
    partner and people; `related` names more one-to-one relations to read in the same
    query; `with_sla` adds its SLA deadlines and state (ReferralQuerySet.with_sla)."""

    def visible(writable: bool) -> ReferralQuerySet:
        queryset = Referral.objects.for_user(user, write=writable).select_related(
            "provider",
            "provider__organization",
            "provider__owner",
            "assigned_to",
            "created_by",
            *related,
        )
        return queryset.with_sla() if with_sla else queryset

    return get_for_user(visible, pk, write=write, refusal=_referral_refusal)


def _referral_refusal(referral: Referral) -> str:
    return (
        f"Your role may read referral {referral.pk} but not change it: the practice's "
        "referral coordinators and managers work referrals."
    )


def possible_duplicates(
    *,
    provider: Provider,
    patient_last_name: str,
    patient_dob: date,
    direction: str = "inbound",
    exclude_pk: int | None = None,
    copies_of: int | None = None,
    around: datetime | None = None,
) -> ReferralQuerySet:
    """Referrals that may be this one again: the same patient (last name, ignoring case
    and surrounding spaces, and birth date) from the same partner (the provider, or any
    provider of the same office) within settings.DUPLICATE_WINDOW_DAYS, the same way (a
    patient a partner referred to us and one we sent to that partner are two referrals,
    not one sent twice). With `copies_of`, the referrals marked as duplicates of that one
    too, however long ago (in the same query, for the detail page). With `around` (an
    existing referral's received_at), the window is counted either side of it, as the
    queue's flag counts it (ReferralQuerySet.with_duplicate_flag), not back from now."""
    window = timedelta(days=settings.DUPLICATE_WINDOW_DAYS)
    partner = Q(provider=provider)
    if provider.organization_id is not None:
        partner |= Q(provider__organization_id=provider.organization_id)
    when = (
        Q(received_at__gte=timezone.now() - window)
        if around is None
        else Q(received_at__gte=around - window, received_at__lte=around + window)
    )
    match = (
        partner
        & when
        & Q(
            direction=direction,
            last_name_key=patient_last_name.strip().lower(),
            patient_dob=patient_dob,
        )
    )
    if copies_of is not None:
        match |= Q(duplicate_of_id=copies_of)
    matches = (
        Referral.objects.alias(last_name_key=Lower(Trim("patient_last_name")))
        .filter(match)
        .for_list()
    )
    if exclude_pk is not None:
        matches = matches.exclude(pk=exclude_pk)
    return matches


# A referral's page lists this many of its copies, and of its possible duplicates; the
# rest are a link to the work queue filtered to them (ReferralFilter's "alike").
ALIKE_LISTED = 10


@dataclass
class Alike:
    """A referral's copies marked as its duplicates, and its possible duplicates (not
    marked as anyone's): the first ALIKE_LISTED of each, and how many there are."""

    copies: list[Referral]
    copies_total: int
    candidates: list[Referral]
    candidates_total: int


def alike_referrals(referral: Referral) -> Alike:
    """What the referral's page lists about duplicates, in one query however many there
    are: the rows of each kind numbered and counted by a window over its kind, and only
    the first ALIKE_LISTED of each read. A copy of another referral is neither."""
    copy_of_this = Q(duplicate_of_id=referral.pk)
    rows = (
        possible_duplicates(
            provider=referral.provider,
            patient_last_name=referral.patient_last_name,
            patient_dob=referral.patient_dob,
            direction=referral.direction,
            exclude_pk=referral.pk,
            # Its copies are listed however old they are: the window is for guesses,
            # counted from when it came (the queue flags an old pair too).
            copies_of=referral.pk,
            around=referral.received_at,
        )
        .filter(copy_of_this | Q(duplicate_of__isnull=True))
        .annotate(
            is_copy=ExpressionWrapper(copy_of_this, output_field=BooleanField()),
            # The newest first, as the list reads (Referral.Meta.ordering).
            rank=Window(
                RowNumber(),
                partition_by=[F("is_copy")],
                order_by=[F("received_at").desc(), F("pk").desc()],
            ),
            of_kind=Window(Count("pk"), partition_by=[F("is_copy")]),
        )
        .filter(rank__lte=ALIKE_LISTED)
        .order_by("-received_at", "-pk")
    )
    alike = Alike(copies=[], copies_total=0, candidates=[], candidates_total=0)
    for row in rows:
        if row.is_copy:
            alike.copies.append(row)
            alike.copies_total = row.of_kind
        else:
            alike.candidates.append(row)
            alike.candidates_total = row.of_kind
    return alike


# Up to this many months a period is shown month by month; longer ones year by year.
MONTHLY_UP_TO = 36


def reciprocity_over_time(
    *, since: date, until: date, provider: Provider | None = None
) -> tuple[str, list[dict[str, Any]]]:
    """Referrals received from and sent to partners (one partner, or all) per month of
    [since, until], or per year when the period is longer than MONTHLY_UP_TO months: one
    grouped query, and every month of the period listed (every year from the first with
    referrals), with zeros, so a quiet month or year shows as such. Returns
    ("month" | "year", rows)."""
    months = (until.year - since.year) * 12 + until.month - since.month + 1
    kind = "month" if months <= MONTHLY_UP_TO else "year"
    zone = timezone.get_current_timezone()
    start = timezone.make_aware(datetime.combine(since, time.min), zone)
    end = timezone.make_aware(datetime.combine(until + timedelta(days=1), time.min), zone)
    # Both directions named, and counting a column of the index: a range of
    # referral_direction_idx each, read from the index alone (a year at a million
    # referrals: 280 → 120 ms).
    rows = Referral.objects.counted().filter(
        direction__in=Referral.Direction.values, received_at__gte=start, received_at__lt=end
    )
    if provider is not None:
        rows = rows.filter(provider=provider)
    counts = {
        timezone.localtime(row["period"], zone).date(): row
        for row in rows.annotate(period=Trunc("received_at", kind, tzinfo=zone))
        .order_by()
        .values("period")
        .annotate(
            received=Count("received_at", filter=Q(direction=Referral.Direction.INBOUND)),
            sent=Count("received_at", filter=Q(direction=Referral.Direction.OUTBOUND)),
        )
    }
    if kind == "month":
        periods = [
            date(since.year + (since.month - 1 + i) // 12, (since.month - 1 + i) % 12 + 1, 1)
            for i in range(months)
        ]
    elif counts:
        # Long periods list the years from the first with referrals to the period's end
        # (this year at the latest): the years since a partner stopped referring show as
        # zeros, not as a chart that ends as if nothing had changed.
        first = min(counts).year
        last = max(max(counts).year, min(until.year, timezone.localdate().year))
        periods = [date(year, 1, 1) for year in range(first, last + 1)]
    else:
        periods = []
    result = []
    for period in periods:
        row = counts.get(period, {"received": 0, "sent": 0})
        result.append(
            {
                "period": period,
                "label": period.strftime("%b %Y" if kind == "month" else "%Y"),
                "part": _part_covered(period, kind, since, until),
                "received": row["received"],
                "sent": row["sent"],
                "balance": row["sent"] - row["received"],
            }
        )
    return kind, result


def _part_covered(period: date, kind: str, since: date, until: date) -> str:
    """The days of a month (or year) the period covers, when not all of them: "Dec 4 to
    31". A part-month's few referrals must not read as a quiet month."""
    if kind == "month":
        following = date(period.year + period.month // 12, period.month % 12 + 1, 1)
    else:
        following = date(period.year + 1, 1, 1)
    last = following - timedelta(days=1)
    first_day, last_day = max(period, since), min(last, until)
    if (first_day, last_day) == (period, last):
        return ""
    if kind == "month":
        return f"{first_day:%b} {first_day.day} to {last_day.day}"
    return f"{first_day:%b} {first_day.day} to {last_day:%b} {last_day.day}"


def _medians_in_python(rows: ReferralQuerySet) -> dict[str, dict[str, float | None]]:
    """Hours to first contact and days to the appointment, the middle value per urgency,
    for a database without percentile_cont (SQLite: the demo and a laptop's tests)."""
    contact: dict[str, list[float]] = {}
    booked: dict[str, list[float]] = {}
    for urgency, received, contacted, appointment in rows.values_list(
        "urgency", "received_at", "contacted_at", "appointment_at"
    ).iterator(chunk_size=2000):
        if contacted is not None:
            contact.setdefault(urgency, []).append((contacted - received).total_seconds())
        if appointment is not None:
            booked.setdefault(urgency, []).append((appointment - received).total_seconds())
    return {
        urgency: {
            "contact_seconds": median(contact[urgency]) if urgency in contact else None,
            "appointment_seconds": median(booked[urgency]) if urgency in booked else None,
        }
        for urgency in {*contact, *booked}
    }


def turnaround(*, start: datetime, end: datetime) -> dict[str, Any]:
    """How fast inbound referrals received in [start, end) were answered and seen against
    the practice's SLA targets, and how often the loop was closed, per urgency: first
    contact on time, late or overdue now; appointment by its target day, after it, or
    overdue now; the middle wait for each; patients seen and the share whose referring
    office got the report. And for patients sent out: how many specialists sent their
    consult report back. The overdue counts are the queue's own SLA states, so each links
    to exactly those rows. Two grouped queries, and one for the targets."""
    inbound = Referral.objects.counted().filter(
        direction=Referral.Direction.INBOUND, received_at__gte=start, received_at__lt=end
    )
    targets = SlaTarget.current()
    now = timezone.now()
    by_urgency = _turnaround_counts(inbound, now=now, targets=targets)
    if connection.vendor != "postgresql":
        for urgency, medians in _medians_in_python(inbound).items():
            by_urgency[urgency].update(medians)
    rows = []
    for urgency, label in Urgency.choices:
        row = by_urgency.get(urgency)
        if row is not None:
            rows.append(_turnaround_row(row, urgency=urgency, label=label))
            rows[-1]["target"] = targets[urgency]
    outbound = (
        Referral.objects.counted()
        .outbound()
        .filter(received_at__gte=start, received_at__lt=end)
        .aggregate(
            sent=Count("pk"),
            seen=Count("pk", filter=Q(seen_at__isnull=False)),
            report_back=Count("pk", filter=Q(report_received_at__isnull=False)),
            report_missing=Count(
                "pk", filter=Q(seen_at__isnull=False, report_received_at__isnull=True)
            ),
        )
    )
    outbound["report_rate"] = _share(outbound["report_back"], outbound["seen"])
    return {"rows": rows, "outbound": outbound}


def _turnaround_filters(today: date) -> dict[str, tuple[str, tuple[Any, ...]]]:
    """The turnaround report's counts besides the referrals received: which referrals
    each counts, in SQL over the columns _turnaround_counts selects, and the values of
    its placeholders."""
    return {
        "contact_on_time": ("contacted_at <= contact_due_at", ()),
        "contact_late": ("contacted_at > contact_due_at", ()),
        "contact_overdue": ("sla_state = %s", (SlaState.CONTACT_OVERDUE,)),
        "booked_on_time": (
            "appointment_at IS NOT NULL AND booked_day <= appointment_due_day",
            (),
        ),
        "booked_late": ("booked_day > appointment_due_day", ()),
        "appointment_overdue": ("sla_state = %s", (SlaState.APPOINTMENT_OVERDUE,)),
        # Overdue with no appointment ever booked: a missed one waiting to be booked
        # again is overdue too, but its booking already counts by its day.
        "unbooked_overdue": (
            "sla_state = %s AND appointment_at IS NULL",
            (SlaState.APPOINTMENT_OVERDUE,),
        ),
        # Never answered, and its appointment day gone by too: the queue shows it as
        # first contact overdue, but no appointment was booked by its day either.
        "unanswered_past_day": (
            "sla_state = %s AND appointment_due_day < %s",
            (SlaState.CONTACT_OVERDUE, connection.ops.adapt_datefield_value(today)),
        ),
        "seen": ("seen_at IS NOT NULL", ()),
        "loop_closed": (
            "seen_at IS NOT NULL AND status IN (%s, %s)",
            (Status.REPORT_SENT, Status.CLOSED),
        ),
        "report_waiting": ("status = %s", (Status.SEEN,)),
    }


# The middle waits, where the database has percentile_cont (Postgres).
_TURNAROUND_MEDIANS = """,
    PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM contacted_at - received_at))
        AS contact_seconds,
    PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY EXTRACT(EPOCH FROM appointment_at - received_at))
        AS appointment_seconds"""


def _turnaround_counts(
    inbound: ReferralQuerySet, *, now: datetime, targets: dict[str, SlaTarget]
) -> dict[str, dict[str, Any]]:
    """The counts of _turnaround_filters per urgency (and on Postgres the middle waits),
    for the urgencies with referrals, in one grouped query. The counts compare each
    referral's deadlines and SLA state (ReferralQuerySet.with_sla: nested CASEs) a dozen
    ways; the ORM writes an annotation out in full wherever it is used, and Postgres
    worked them out again for each count: 21 CASEs a row where 6 do, two seconds for a
    year of a million referrals. So they are worked out once per referral, in a
    subquery, and counted over its columns."""
    # django-stubs check values() against the model's fields; they cannot see the
    # annotations with_sla() adds, since it returns the plain queryset type.
    referrals = (
        inbound.with_sla(now=now, targets=targets)
        .order_by()
        .values(  # type: ignore[misc]
            "urgency",
            "status",
            "received_at",
            "contacted_at",
            "appointment_at",
            "seen_at",
            "contact_due_at",
            "appointment_due_day",
            "sla_state",
            booked_day=F("appointment_day"),
        )
    )
    referrals_sql, referrals_params = referrals.query.sql_with_params()
    postgres = connection.vendor == "postgresql"
    if postgres:
        # The fence that keeps Postgres from merging the subquery into the counting
        # query, and so writing its columns out in full again.
        referrals_sql += " OFFSET 0"
    filters = _turnaround_filters(timezone.localdate(now))
    counts = "".join(
        f",\n    COUNT(*) FILTER (WHERE {where}) AS {name}" for name, (where, _) in filters.items()
    )
    sql = (
        f"SELECT urgency, COUNT(*) AS received{counts}"
        f"{_TURNAROUND_MEDIANS if postgres else ''}\n"
        f"FROM ({referrals_sql}) AS referral\nGROUP BY urgency"
    )
    params = [*(value for _, values in filters.values() for value in values), *referrals_params]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        names = [column[0] for column in cursor.description]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def _share(part: int, whole: int) -> float | None:
    return part / whole * 100 if whole else None


def _turnaround_row(row: dict[str, Any], *, urgency: str, label: str) -> dict[str, Any]:
    contact_seconds = row.get("contact_seconds")
    appointment_seconds = row.get("appointment_seconds")
    answered = row["contact_on_time"] + row["contact_late"] + row["contact_overdue"]
    booked = row["booked_on_time"] + row["booked_late"]
    return {
        **row,
        "urgency": urgency,
        "label": label,
        # On time among those whose clock has run out or stopped: a referral still
        # within its first-contact window is neither on time nor late yet.
        "contact_rate": _share(row["contact_on_time"], answered),
        "booked_rate": _share(
            row["booked_on_time"],
            booked + row["unbooked_overdue"] + row["unanswered_past_day"],
        ),
        "loop_rate": _share(row["loop_closed"], row["seen"]),
        "contact_hours": None if contact_seconds is None else contact_seconds / 3600,
        "appointment_days": None if appointment_seconds is None else appointment_seconds / 86400,
    }


# The share of referrals whose senders a Pareto view counts ("80 % came from N partners").
PARETO_SHARE = 0.8


def referrers(*, start: datetime, end: datetime) -> dict[str, Any]:
    """Who sent the inbound referrals of [start, end): every referring partner with their
    count, busiest first (ties by id, so pages do not shuffle), how many partners sent
    PARETO_SHARE of them, and the same-length period before for comparison. Grouped by
    partner id alone, at most one row per partner; names are read for a page at a time
    (referrer_rows)."""
    inbound = Referral.objects.counted().filter(
        direction=Referral.Direction.INBOUND, received_at__gte=start, received_at__lt=end
    )
    counts = list(
        inbound.order_by()
        .values_list("provider")
        .annotate(n=Count("pk"))
        .order_by("-n", "provider")
    )
    total = sum(n for _, n in counts)
    # How many of the busiest partners it takes to reach PARETO_SHARE of the referrals.
    running = reaching = 0
    for _, n in counts:
        running += n
        reaching += 1
        if running >= total * PARETO_SHARE:
            break
    before = (
        Referral.objects.counted()
        .filter(
            direction=Referral.Direction.INBOUND,
            received_at__gte=start - (end - start),
            received_at__lt=start,
        )
        .count()
    )
    return {
        "counts": counts,
        "total": total,
        "partners": len(counts),
        "pareto_partners": reaching,
        # Those partners as a share of all who referred.
        "pareto_share": reaching / len(counts) * 100 if counts else None,
        "previous_total": before,
        "change": (total - before) / before * 100 if before else None,
    }


def referrer_rows(
    counts: list[tuple[int, int]], *, total: int, first_rank: int = 1, cumulative: int = 0
) -> list[dict[str, Any]]:
    """Rows of the ranking for these (partner id, count) pairs: the partner with their
    office, the share of all referrals and the running share from the top. `cumulative`
    is the referrals of the partners ranked above `first_rank`."""
    partners = Provider.objects.select_related("organization").in_bulk([pk for pk, _ in counts])
    rows = []
    for rank, (pk, n) in enumerate(counts, start=first_rank):
        cumulative += n
        if pk not in partners:
            continue  # deleted since the counts were read
        rows.append(
            {
                "rank": rank,
                "partner": partners[pk],
                "n": n,
                "share": n / total * 100 if total else 0.0,
                "cumulative": cumulative / total * 100 if total else 0.0,
            }
        )
    return rows


def _usual(spellings: Counter[str]) -> str:
    """The spelling most partners use; of equally common ones, the first alphabetically."""
    return min(spellings, key=lambda spelt: (-spellings[spelt], spelt))


def referrals_by_specialty_and_office(
    counts: list[tuple[int, int]], *, limit: int | None = 15
) -> dict[str, list[dict[str, Any]]]:
    """The referrals of the (partner id, count) pairs `referrers` found, by the partners'
    specialty and by their office, busiest first (the `limit` busiest of each, or every
    one), with how many partners sent them. Added
    up here from those counts and every partner's two fields, read in one query: grouping
    a year of referrals joined to their partners again, twice, took a second at a million
    referrals."""
    fields = {
        pk: (specialty, office, name)
        for pk, specialty, office, name in Provider.objects.values_list(
            "pk", "specialty", "organization", "organization__name"
        ).iterator(chunk_size=5000)
    }
    # Specialty is typed: "Family Medicine", "family medicine " and "Family  medicine" are
    # one specialty, shown as most of its partners spell it.
    specialties: dict[str, list[int]] = {}
    spellings: dict[str, Counter[str]] = {}
    offices: dict[int | None, list[Any]] = {}
    for pk, n in counts:
        if pk not in fields:
            continue  # deleted since the counts were read
        specialty, office, name = fields[pk]
        spelt = " ".join(specialty.split())
        key = spelt.casefold()
        into = specialties.setdefault(key, [0, 0])
        into[0] += n
        into[1] += 1
        spellings.setdefault(key, Counter())[spelt] += 1
        found = offices.setdefault(office, [0, 0, name])
        found[0] += n
        found[1] += 1
    by_specialty = sorted(specialties.items(), key=lambda item: (-item[1][0], item[0]))
    by_office = sorted(
        offices.items(), key=lambda item: (-item[1][0], item[0] is None, item[0] or 0)
    )
    return {
        "by_specialty": [
            {"specialty": _usual(spellings[key]), "n": n, "partners": partners}
            for key, (n, partners) in by_specialty[:limit]
        ],
        "by_office": [
            {"office": office, "name": name, "n": n, "partners": partners}
            for office, (n, partners, name) in by_office[:limit]
        ],
    }
