"""Setting up and changing a user's second factor; signing a user out everywhere; staff who
leave are deactivated, never deleted, and their current work is handed to colleagues."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib.admin.models import LogEntry
from django.contrib.auth.models import User
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    ForeignObjectRel,
    ManyToManyRel,
    Max,
    OuterRef,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce
from django.utils import timezone
from django_otp.models import Device
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice
from knox.models import AuthToken

from core.roles import PARTNER_OWNER_ROLES, user_role
from core.templatetags.people import person
from outreach.models import CalendarFeed, Event, PlannedVisit, Task
from outreach.services.tasks import HANDED_OVER
from partners.models import Provider
from referrals.models import Referral
from referrals.services.history import _record_assignments

BACKUP_CODES = 10
AUTHENTICATOR_NAME = "Authenticator app"
BACKUP_NAME = "Backup codes"
# How long an authenticator being set up waits for its first code (its browser's session
# ends long before, at its idle logoff).
PENDING_KEPT = timedelta(days=1)


def authenticator_pending(*, user: User, shown: int | None = None) -> TOTPDevice:
    """The not yet confirmed authenticator this user is setting up: `shown`, the one this
    browser's set-up page showed before, or a new one.

    The same one on every visit to the set-up page until confirmed, so a reload does not
    change the QR code under a phone that has already scanned it. Never one that another
    browser was shown: whoever opened the page there with only the password would keep a
    copy of the key the user then scans and confirms."""
    device = None
    if shown is not None:
        device = TOTPDevice.objects.filter(user=user, confirmed=False, pk=shown).first()
    if device is None:
        # A set-up left unfinished in another browser a day ago went with its session.
        TOTPDevice.objects.filter(
            user=user, confirmed=False, created_at__lt=timezone.now() - PENDING_KEPT
        ).delete()
        device = TOTPDevice.objects.create(user=user, name=AUTHENTICATOR_NAME, confirmed=False)
    return device


@transaction.atomic
def authenticator_confirm(*, device: TOTPDevice, keep_session: str | None = None) -> list[str]:
    """Confirm a new authenticator (its code was checked by the caller) and give the user
    a fresh set of backup codes. A previous authenticator (a replaced phone, perhaps a lost
    one) stops working, and the user's other sessions end, the ones it may have verified:
    only the session `keep_session`, where it was set up, goes on. Returns the backup
    codes, which are shown once and never again."""
    TOTPDevice.objects.filter(user=device.user).exclude(pk=device.pk).delete()
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    sessions_end(user=device.user, keep=keep_session)
    return backup_codes_replace(user=device.user)


@transaction.atomic
def backup_codes_replace(*, user: User) -> list[str]:
    """Ten new one-time backup codes; the old ones stop working."""
    static, _ = StaticDevice.objects.get_or_create(
        user=user, name=BACKUP_NAME, defaults={"confirmed": True}
    )
    static.token_set.all().delete()
    codes = [StaticToken.random_token() for _ in range(BACKUP_CODES)]
    StaticToken.objects.bulk_create(StaticToken(device=static, token=code) for code in codes)
    return codes


@transaction.atomic
def two_factor_remove(*, user: User, keep_session: str | None = None) -> None:
    """Turn off the second factor (when the user's role does not require one). As with any
    change to how the account signs in, the user's other sessions end; `keep_session`, the
    one that turned it off, goes on."""
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    sessions_end(user=user, keep=keep_session)


@transaction.atomic
def device_delete(*, device: Device) -> None:
    """An administrator removes a user's authenticator or backup codes (a lost phone).

    Every session of the user ends with it: a session verified with the device must not
    outlive it. Checking the device on every request instead would cost a query per page
    for every manager; removal is rare and happens here, so the work is done here."""
    user = device.user
    device.delete()
    sessions_end(user=user)


def sessions_end(*, user: User, keep: str | None = None) -> int:
    """Sign the user out on every browser but the session `keep`, if given. Returns how many
    sessions ended.

    Sessions live in the database (the default engine) without a user column, so each live
    one is decoded; with the 15-minute idle logoff there are only ever a few."""
    ended = [
        session.pk
        for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if session.pk != keep and session.get_decoded().get("_auth_user_id") == str(user.pk)
    ]
    Session.objects.filter(pk__in=ended).delete()
    return len(ended)


def api_tokens_revoke(*, user: User) -> int:
    """Every API token of the user stops working (knox keeps only their hashes: revoking is
    deleting). Done with any change to how they sign in: a token made while someone else
    knew the password must not outlive it. Returns how many were revoked."""
    revoked, _ = AuthToken.objects.filter(user=user).delete()
    return revoked


def user_history(*, user: User) -> dict[str, int]:
    """The rows that name this user and, were the user deleted, would lose the name
    (SET_NULL), stop the deletion (PROTECT: the patient-data audit trail) or vanish with it
    (the admin's own log): {"referral events": 12, "activity": 1}, empty if there are none.
    Read from the models' metadata, so a new model that points at users is counted without
    a change here. A query per such relation; only the admin's delete pages ask."""
    counts: dict[type[models.Model], int] = {}
    for relation in User._meta.get_fields(include_hidden=True):
        if not isinstance(relation, ForeignObjectRel) or isinstance(relation, ManyToManyRel):
            continue
        model = relation.related_model
        on_delete: Any = relation.on_delete
        if on_delete not in (models.SET_NULL, models.PROTECT) and model is not LogEntry:
            continue
        count = model._base_manager.filter(**{relation.field.name: user}).count()
        if count:
            counts[model] = counts.get(model, 0) + count
    return {
        str(model._meta.verbose_name if count == 1 else model._meta.verbose_name_plural): count
        for model, count in counts.items()
    }


@transaction.atomic
def user_deactivate(*, user: User) -> None:
    """Staff who leave: they can no longer sign in, are signed out everywhere, and every
    row they are named on keeps their name.

    Their API tokens and private calendar URL go too (both are already refused for an
    inactive user, but a reactivated account must not find old ones working again), and
    so do their second-factor devices: a phone that left the practice is no second factor,
    so someone who comes back sets up again. django-axes keeps its records of failed
    sign-ins, which are a security log, not a state to reset."""
    user.is_active = False
    user.save(update_fields=["is_active"])
    api_tokens_revoke(user=user)
    CalendarFeed.objects.filter(user=user).delete()
    TOTPDevice.objects.filter(user=user).delete()
    StaticDevice.objects.filter(user=user).delete()
    sessions_end(user=user)


HANDOVER_KINDS = ("partners", "referrals", "tasks", "visits", "events")


# What each kind of work is called, one and many.
WORK_NOUNS = {
    "partners": ("partner", "partners"),
    "referrals": ("open referral", "open referrals"),
    "tasks": ("open task", "open tasks"),
    "visits": ("planned visit", "planned visits"),
    "events": ("upcoming event", "upcoming events"),
}


def work_amount(kind: str, count: int) -> str:
    """`count` rows of a kind of work in words: "1 open task", "3 partners"."""
    one, many = WORK_NOUNS[kind]
    return f"{count} {one if count == 1 else many}"


@dataclass(frozen=True)
class Work:
    """How many rows of each kind of current work: what a user holds, or what moved."""

    partners: int = 0
    referrals: int = 0
    tasks: int = 0
    visits: int = 0
    events: int = 0

    @property
    def total(self) -> int:
        return self.partners + self.referrals + self.tasks + self.visits + self.events

    def in_words(self) -> list[str]:
        """Each kind there is some of, in words: ["26 partners", "1 open task"]."""
        return [work_amount(kind, n) for kind in HANDOVER_KINDS if (n := getattr(self, kind))]


# The column of each kind of work that says whose it is.
WORK_HOLDER = {
    "partners": "owner",
    "referrals": "assigned_to",
    "tasks": "assignee",
    "visits": "liaison",
    "events": "organizer",
}


def _current_work(*, user: User | OuterRef) -> dict[str, models.QuerySet[Any]]:
    """A user's current work, by kind: what they are expected to act on next. Everything
    else that names them (who logged an activity, created or worked a referral, an audit
    row, a sent newsletter's audience) is history and keeps their name."""
    return {
        "partners": Provider.objects.filter(owner=user),
        "referrals": Referral.objects.open().filter(assigned_to=user),
        "tasks": Task.objects.open().filter(assignee=user),
        # Today's visits still to make count: the day is not over for the partner.
        "visits": PlannedVisit.objects.filter(
            liaison=user,
            status=PlannedVisit.Status.PLANNED,
            planned_on__gte=timezone.localdate(),
        ),
        "events": Event.objects.filter(organizer=user, starts_at__gte=timezone.now()),
    }


def user_current_work(*, user: User) -> Work:
    """What `user_work_handover` would move now, counted in one query."""
    names = [f"work_{kind}" for kind in HANDOVER_KINDS]
    counts = users_with_work().filter(pk=user.pk).values_list(*names).get()
    return Work(*counts)


def users_with_work() -> models.QuerySet[User]:
    """Every user, active first, each with how much current work they hold (`work_partners`,
    `work_referrals`, …), in one query: the team page."""
    work = _current_work(user=OuterRef("pk"))
    return User.objects.annotate(
        **{
            f"work_{kind}": Coalesce(
                Subquery(
                    rows.order_by().values(WORK_HOLDER[kind]).annotate(n=Count("pk")).values("n")
                ),
                0,
            )
            for kind, rows in work.items()
        }
    ).order_by("-is_active", "first_name", "last_name", "username")


# What a colleague's role must allow to take over each kind of work, and the words for it.
WORK_PERMISSIONS = {
    "partners": ("partners.change_provider",),
    "referrals": ("referrals.change_referral", "referrals.view_patient_details"),
    "tasks": ("outreach.change_task",),
    "visits": ("outreach.change_plannedvisit",),
    "events": ("outreach.change_event",),
}
WORK_DOING = {
    "partners": "look after partners",
    "referrals": "work referrals and see their patients",
    "tasks": "work tasks",
    "visits": "plan office visits",
    "events": "organize events",
}


def handover_refusal(*, from_user: User, to_user: User, kind: str | None = None) -> str | None:
    """Why `to_user` cannot take `from_user`'s work (of `kind`, when given: whether their
    role allows it), or None if they can."""
    if to_user.pk == from_user.pk:
        return f"That is {person(from_user)}, whose work is being handed over: choose a colleague."
    if not to_user.is_active:
        return f"{person(to_user)} is deactivated: choose an active colleague."
    role = user_role(to_user)
    # A partner's owner is chosen among liaisons and managers (the partner form's list): a
    # coordinator may edit partners but would be dropped as owner at the next save.
    owns = kind != "partners" or role in PARTNER_OWNER_ROLES
    if kind is not None and not (owns and to_user.has_perms(WORK_PERMISSIONS[kind])):
        who = f"{person(to_user)} ({role})" if role else person(to_user)
        return f"{who} cannot {WORK_DOING[kind]}: choose a colleague whose role can."
    return None


@dataclass(frozen=True)
class HandoverResult:
    moved: Work
    # Planned visits left with from_user: the colleague already plans that office that day.
    visits_kept: int = 0
    # Of the tasks moved, those that went with their partner to its new owner (counted in
    # moved.tasks too).
    tasks_with_partners: int = 0


@transaction.atomic
def user_work_handover(
    *,
    from_user: User,
    to_user: User,
    actor: User,
    partners_to: User | None = None,
    referrals_to: User | None = None,
    tasks_to: User | None = None,
    visits_to: User | None = None,
    events_to: User | None = None,
) -> HandoverResult:
    """Hand `from_user`'s current work to colleagues: each kind to its own `<kind>_to`, or
    to `to_user`. Returns how many rows of each kind moved.

    Every update is conditional on the row still being `from_user`'s at that moment, so a
    row someone else reassigned or closed since the page was loaded is left alone and not
    counted. One update per kind; each referral gets its assignment event, written in one
    insert, as the work queue's bulk assign does."""
    recipients = {
        "partners": partners_to or to_user,
        "referrals": referrals_to or to_user,
        "tasks": tasks_to or to_user,
        "visits": visits_to or to_user,
        "events": events_to or to_user,
    }
    # A kind of work nobody holds can go to anyone; the rest only to a role that can do it.
    held = user_current_work(user=from_user)
    problems = {
        f"{kind}_to": problem
        for kind, recipient in recipients.items()
        if (
            problem := handover_refusal(
                from_user=from_user,
                to_user=recipient,
                kind=kind if getattr(held, kind) else None,
            )
        )
    }
    if problems:
        raise ValidationError(problems)
    work = _current_work(user=from_user)
    now = timezone.now()

    # Locked and read first, so each partner's Changes page can say who took it over, from
    # whom, and who handed it over (a queryset update writes no history of its own).
    handed = list(work["partners"].select_for_update().order_by("pk"))
    partners = Provider.objects.filter(pk__in=[p.pk for p in handed], owner=from_user).update(
        owner=recipients["partners"], updated_at=now
    )
    for provider in handed:
        provider.owner, provider.updated_at = recipients["partners"], now
    Provider.history.bulk_history_create(
        handed,
        update=True,
        default_user=actor,
        default_change_reason=f"Work handed over from {person(from_user)}",
        default_date=now,
    )

    # Locked in id order (as the bulk action locks), so the ids read are exactly the rows
    # the update moves and the history names the right previous holder.
    referral_ids = list(
        work["referrals"].select_for_update().order_by("pk").values_list("pk", flat=True)
    )
    referrals = Referral.objects.filter(pk__in=referral_ids, assigned_to=from_user).update(
        assigned_to=recipients["referrals"], updated_at=now
    )
    _record_assignments(
        moves=[(pk, from_user.pk) for pk in referral_ids],
        to_assignee=recipients["referrals"],
        actor=actor,
        at=now,
        note="Work handed over",
    )

    # A partner's rekindle, annual-meeting and thank-you tasks are its owner's to act on
    # (as when a partner changes hands on its page), wherever the other tasks go: the
    # nightly runs, seeing one open, would give the new owner none of their own.
    # The follow-up reminder goes once per task; the new assignee has not had it.
    tasks_with_partners = (
        work["tasks"]
        .filter(kind__in=HANDED_OVER, provider__owner=recipients["partners"])
        .update(assignee=recipients["partners"], reminded_at=None)
    )
    tasks = tasks_with_partners + work["tasks"].update(
        assignee=recipients["tasks"], reminded_at=None
    )

    # An office is on a liaison's plan once a day (a constraint): a visit the colleague
    # already plans stays where it is and is reported.
    visits_to_user = recipients["visits"]
    already_planned = PlannedVisit.objects.filter(
        liaison=visits_to_user,
        planned_on=OuterRef("planned_on"),
        organization=OuterRef("organization"),
    )
    # Each day's visits go after the colleague's own, in the order they had: the route
    # the colleague planned stays as it was. Their last stop of each day is read first:
    # read inside the update, SQLite would count the visits the update already moved.
    colleagues_last = (
        PlannedVisit.objects.filter(
            liaison=visits_to_user, planned_on__in=work["visits"].values("planned_on")
        )
        .order_by()
        .values("planned_on")
        .annotate(last=Max("position"))
        .values_list("planned_on", "last")
    )
    after_theirs = Case(
        *(When(planned_on=day, then=Value(last + 1)) for day, last in colleagues_last),
        default=Value(0),
    )
    visits = (
        work["visits"]
        .exclude(Exists(already_planned))
        .update(liaison=visits_to_user, position=F("position") + after_theirs)
    )
    visits_kept = work["visits"].count()

    events = work["events"].update(organizer=recipients["events"])
    return HandoverResult(
        moved=Work(
            partners=partners, referrals=referrals, tasks=tasks, visits=visits, events=events
        ),
        visits_kept=visits_kept,
        tasks_with_partners=tasks_with_partners,
    )
