"""Handing a user's work to colleagues: what they hold now moves, what they did keeps their
name, and a row someone else changed meanwhile is left alone."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.core.exceptions import ValidationError
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from accounts import services
from core.factories import UserFactory
from core.pagination import PAGE_SIZE
from core.roles import Role
from core.templatetags.people import person
from outreach.factories import ActivityFactory, EventFactory, PlannedVisitFactory, TaskFactory
from outreach.models import Activity, Event, PlannedVisit, Task
from partners.factories import OrganizationFactory, ProviderFactory
from partners.models import Provider
from referrals.factories import ReferralFactory
from referrals.models import Referral, ReferralEvent, Status

pytestmark = pytest.mark.django_db


@pytest.fixture
def leaver() -> User:
    return UserFactory.create(username="leaver", role=Role.LIAISON)


@pytest.fixture
def colleague() -> User:
    """Someone whose role can take every kind of work."""
    return UserFactory.create(username="colleague", role=Role.MANAGER)


def page(user: User) -> str:
    return reverse("accounts:user_handover", args=[user.pk])


def said(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def current_work(user: User, *, history_too: bool = False) -> dict[str, list[Any]]:
    """Two rows of every kind of current work for `user`; with `history_too`, rows that
    name the user but are not current work."""
    today = timezone.localdate()
    work: dict[str, list[Any]] = {
        "partners": ProviderFactory.create_batch(2, owner=user),
        # Names no page would hold by chance (a random one can be a word such as "Page").
        "referrals": [
            ReferralFactory.create(assigned_to=user, patient_last_name=f"Quaxworth{n}")
            for n in range(2)
        ],
        "tasks": TaskFactory.create_batch(2, assignee=user),
        "visits": [
            PlannedVisitFactory.create(liaison=user, planned_on=today),
            PlannedVisitFactory.create(liaison=user, planned_on=today + timedelta(days=3)),
        ],
        "events": EventFactory.create_batch(2, organizer=user),
    }
    if history_too:
        work["history"] = [
            ReferralFactory.create(assigned_to=user, status=Status.CLOSED),
            ReferralFactory.create(created_by=user),
            TaskFactory.create(assignee=user, status=Task.Status.DONE),
            PlannedVisitFactory.create(liaison=user, planned_on=today - timedelta(days=1)),
            PlannedVisitFactory.create(
                liaison=user, planned_on=today, status=PlannedVisit.Status.DONE
            ),
            EventFactory.create(organizer=user, starts_at=timezone.now() - timedelta(days=2)),
            ActivityFactory.create(logged_by=user),
        ]
    return work


def hand_over(client: Client, user: User, **choices: Any) -> Any:
    data = {name: colleague.pk for name, colleague in choices.items()}
    return client.post(page(user), {**data, "confirmed": "on"})


# The service


def test_the_hand_over_moves_exactly_the_current_work_and_leaves_history_alone(
    leaver: User, colleague: User, manager: User
) -> None:
    work = current_work(leaver, history_too=True)

    result = services.user_work_handover(from_user=leaver, to_user=colleague, actor=manager)

    assert result.moved == services.Work(partners=2, referrals=2, tasks=2, visits=2, events=2)
    assert set(Provider.objects.filter(owner=colleague)) == set(work["partners"])
    assert set(Referral.objects.filter(assigned_to=colleague)) == set(work["referrals"])
    assert set(Task.objects.filter(assignee=colleague)) == set(work["tasks"])
    assert set(PlannedVisit.objects.filter(liaison=colleague)) == set(work["visits"])
    assert set(Event.objects.filter(organizer=colleague)) == set(work["events"])
    closed, created, done, yesterday, visited, past_event, activity = work["history"]
    for row in (closed, done):
        row.refresh_from_db()
    assert closed.assigned_to == leaver
    assert Referral.objects.get(pk=created.pk).created_by == leaver
    assert done.assignee == leaver
    assert {v.pk for v in PlannedVisit.objects.filter(liaison=leaver)} == {
        yesterday.pk,
        visited.pk,
    }
    assert Event.objects.get(pk=past_event.pk).organizer == leaver
    assert Activity.objects.get(pk=activity.pk).logged_by == leaver
    assert services.user_current_work(user=leaver) == services.Work()


def test_each_kind_of_work_can_go_to_its_own_colleague(
    leaver: User, colleague: User, coordinator: User, manager: User
) -> None:
    current_work(leaver)

    result = services.user_work_handover(
        from_user=leaver, to_user=colleague, referrals_to=coordinator, actor=manager
    )

    assert result.moved.total == 10
    assert services.user_current_work(user=coordinator) == services.Work(referrals=2)
    assert services.user_current_work(user=colleague) == services.Work(
        partners=2, tasks=2, visits=2, events=2
    )


def test_a_row_someone_else_reassigned_meanwhile_is_left_alone_and_not_counted(
    leaver: User, colleague: User, coordinator: User, manager: User
) -> None:
    work = current_work(leaver)
    # Between the manager's page and the hand-over, others changed some rows.
    taken = work["referrals"][0]
    Referral.objects.filter(pk=taken.pk).update(assigned_to=coordinator)
    Task.objects.filter(pk=work["tasks"][0].pk).update(status=Task.Status.DONE)
    Provider.objects.filter(pk=work["partners"][0].pk).update(owner=coordinator)

    result = services.user_work_handover(from_user=leaver, to_user=colleague, actor=manager)

    assert result.moved == services.Work(partners=1, referrals=1, tasks=1, visits=2, events=2)
    assert Referral.objects.get(pk=taken.pk).assigned_to == coordinator
    assert Provider.objects.get(pk=work["partners"][0].pk).owner == coordinator
    assert Task.objects.get(pk=work["tasks"][0].pk).assignee == leaver
    assert not ReferralEvent.objects.filter(referral=taken).exists()


def test_every_handed_over_referral_gets_its_assignment_event(
    leaver: User, colleague: User, manager: User
) -> None:
    work = current_work(leaver, history_too=True)
    closed = work["history"][0]

    services.user_work_handover(from_user=leaver, to_user=colleague, actor=manager)

    events = ReferralEvent.objects.filter(kind=ReferralEvent.Kind.ASSIGNMENT)
    assert sorted(e.referral_id for e in events) == sorted(r.pk for r in work["referrals"])
    for event in events:
        assert (event.from_assignee, event.to_assignee, event.actor) == (
            leaver,
            colleague,
            manager,
        )
        assert event.note == "Work handed over"
    assert not ReferralEvent.objects.filter(referral=closed).exists()


def test_the_hand_over_makes_the_same_queries_however_much_work_there_is(
    leaver: User, colleague: User, manager: User, django_assert_num_queries: Any
) -> None:
    current_work(leaver)
    # The work held, counted; the colleague's permissions; one update per kind (two for
    # tasks: the partners' own go with them); the partners and the referrals each locked,
    # then updated, then their history or events inserted; the colleague's last stop of
    # each day read; the visits left behind counted; the savepoint of the transaction.
    with django_assert_num_queries(16):
        services.user_work_handover(from_user=leaver, to_user=colleague, actor=manager)
    for _ in range(5):
        current_work(colleague)
    successor = UserFactory.create(username="successor", role=Role.MANAGER)

    with django_assert_num_queries(16):
        services.user_work_handover(from_user=colleague, to_user=successor, actor=manager)


def test_a_visit_the_colleague_already_plans_stays_and_is_reported(
    leaver: User, colleague: User, manager: User
) -> None:
    office = OrganizationFactory.create()
    today = timezone.localdate()
    mine = PlannedVisitFactory.create(liaison=leaver, organization=office, planned_on=today)
    PlannedVisitFactory.create(liaison=colleague, organization=office, planned_on=today)
    PlannedVisitFactory.create(liaison=leaver, planned_on=today)

    result = services.user_work_handover(from_user=leaver, to_user=colleague, actor=manager)

    assert (result.moved.visits, result.visits_kept) == (1, 1)
    assert PlannedVisit.objects.get(pk=mine.pk).liaison == leaver


def test_handed_over_visits_come_after_the_colleague_s_own_on_their_plan(
    leaver: User, colleague: User, manager: User
) -> None:
    today = timezone.localdate()
    theirs = [
        PlannedVisitFactory.create(liaison=colleague, planned_on=today, position=n)
        for n in range(2)
    ]
    # Listed in the leaver's order, whatever the order the rows were made in.
    handed = [
        PlannedVisitFactory.create(liaison=leaver, planned_on=today, position=n) for n in (1, 0)
    ][::-1]

    services.user_work_handover(from_user=leaver, to_user=colleague, actor=manager)

    plan = list(PlannedVisit.objects.filter(liaison=colleague, planned_on=today))
    assert plan == [*theirs, *handed]
    assert len({visit.position for visit in plan}) == 4


def test_a_handed_over_task_reminds_its_new_assignee(
    leaver: User, colleague: User, manager: User
) -> None:
    task = TaskFactory.create(assignee=leaver, reminded_at=timezone.now())

    services.user_work_handover(from_user=leaver, to_user=colleague, actor=manager)

    assert Task.objects.get(pk=task.pk).reminded_at is None


def test_a_partners_own_tasks_go_with_the_partner_when_the_tasks_go_to_someone_else(
    client_for: Any, leaver: User, colleague: User, liaison: User, manager: User
) -> None:
    partner = ProviderFactory.create(owner=leaver)
    owners_tasks = [
        TaskFactory.create(assignee=leaver, provider=partner, kind=kind)
        for kind in (Task.Kind.REKINDLE, Task.Kind.ANNUAL_MEETING, Task.Kind.THANK_YOU)
    ]
    follow_up = TaskFactory.create(assignee=leaver, provider=partner, kind=Task.Kind.FOLLOW_UP)

    client = client_for(manager)
    review = client.post(page(leaver), {"to_user": colleague.pk, "partners_to": liaison.pk})
    assert (
        "the partners' rekindle, annual-meeting and thank-you tasks go with the partners to "
        f"{escape(person(liaison))}" in review.content.decode()
    )
    response = hand_over(client, leaver, to_user=colleague, partners_to=liaison)

    # The nightly rekindle and annual-meeting runs, seeing these open, give the partner's
    # new owner none of their own: they are the owner's to act on.
    for task in owners_tasks:
        assert Task.objects.get(pk=task.pk).assignee == liaison
    assert Task.objects.get(pk=follow_up.pk).assignee == colleague
    assert said(response) == [
        f"Handed over {person(leaver)}'s work: 1 partner and 3 open tasks to {person(liaison)}; "
        f"1 open task to {person(colleague)}."
    ]


def test_the_service_refuses_the_same_user_or_a_deactivated_colleague(
    leaver: User, colleague: User, manager: User
) -> None:
    current_work(leaver)
    gone = UserFactory.create(username="gone", is_active=False)

    with pytest.raises(ValidationError) as same:
        services.user_work_handover(from_user=leaver, to_user=leaver, actor=manager)
    with pytest.raises(ValidationError) as inactive:
        services.user_work_handover(
            from_user=leaver, to_user=colleague, tasks_to=gone, actor=manager
        )

    assert set(same.value.message_dict) == {f"{kind}_to" for kind in services.HANDOVER_KINDS}
    assert set(inactive.value.message_dict) == {"tasks_to"}
    assert services.user_current_work(user=leaver).total == 10


def test_each_kind_of_work_goes_only_to_a_role_that_can_do_it(
    leaver: User, colleague: User, coordinator: User, manager: User
) -> None:
    current_work(leaver)
    liaison = UserFactory.create(username="another-liaison", role=Role.LIAISON)

    with pytest.raises(ValidationError) as to_liaison:
        services.user_work_handover(from_user=leaver, to_user=liaison, actor=manager)
    with pytest.raises(ValidationError) as to_coordinator:
        services.user_work_handover(from_user=leaver, to_user=coordinator, actor=manager)

    # A liaison works no referral; a coordinator plans no visit, organizes no event, and
    # owns no partner (the partner form offers liaisons and managers as owners: a
    # coordinator given partners would be dropped as their owner at the next save).
    assert set(to_liaison.value.message_dict) == {"referrals_to"}
    assert "cannot work referrals" in to_liaison.value.message_dict["referrals_to"][0]
    assert set(to_coordinator.value.message_dict) == {"partners_to", "visits_to", "events_to"}
    assert "cannot look after partners" in to_coordinator.value.message_dict["partners_to"][0]
    assert services.user_current_work(user=leaver).total == 10

    result = services.user_work_handover(
        from_user=leaver, to_user=liaison, referrals_to=coordinator, actor=manager
    )

    assert result.moved == services.Work(partners=2, referrals=2, tasks=2, visits=2, events=2)
    assert Referral.objects.filter(assigned_to=coordinator).count() == 2


def test_a_kind_of_work_nobody_holds_can_go_to_anyone(
    leaver: User, coordinator: User, manager: User
) -> None:
    TaskFactory.create(assignee=leaver)

    result = services.user_work_handover(from_user=leaver, to_user=coordinator, actor=manager)

    assert (result.moved.partners, result.moved.tasks, result.moved.visits) == (0, 1, 0)


# The page


def test_a_recipient_whose_role_cannot_do_the_work_is_refused_on_the_page(
    client_for: Any, manager: User, leaver: User, coordinator: User
) -> None:
    current_work(leaver)
    liaison = UserFactory.create(username="another-liaison", role=Role.LIAISON)
    client = client_for(manager)

    offered = client.get(page(leaver)).content.decode()
    everything = hand_over(client, leaver, to_user=liaison)
    split = hand_over(
        client,
        leaver,
        to_user=coordinator,
        partners_to=liaison,
        visits_to=liaison,
        events_to=coordinator,
    )

    assert everything.status_code == split.status_code == 200
    to_user_errors = everything.context["form"].errors["to_user"]
    assert to_user_errors == [
        f"{liaison.get_full_name()} (Liaison) cannot work referrals and see their patients: "
        "choose a colleague whose role can. Or choose one under “Open referrals to”."
    ]
    # The colleagues are offered with their roles, which decide what each can take.
    assert f"{liaison.get_full_name()} (Liaison)</option>" in offered
    assert f"{coordinator.get_full_name()} (Referral coordinator)</option>" in offered
    assert set(split.context["form"].errors) == {"events_to"}
    assert "cannot organize events" in split.context["form"].errors["events_to"][0]
    assert "nothing has moved yet" in split.content.decode()
    assert services.user_current_work(user=leaver).total == 10


def test_a_manager_or_an_administrator_may_open_the_page(
    client_for: Any, manager: User, administrator: User, leaver: User
) -> None:
    for user in (manager, administrator):
        assert client_for(user).get(page(leaver)).status_code == 200


def test_a_liaison_or_a_coordinator_is_refused_and_nothing_moves(
    client_for: Any, liaison: User, coordinator: User, leaver: User, colleague: User
) -> None:
    current_work(leaver)
    for user in (liaison, coordinator):
        client = client_for(user)
        assert client.get(page(leaver)).status_code == 403
        assert hand_over(client, leaver, to_user=colleague).status_code == 403
    assert services.user_current_work(user=leaver).total == 10


def test_someone_signed_out_is_sent_to_sign_in(leaver: User) -> None:
    response = Client().get(page(leaver))

    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


def test_an_unknown_user_is_not_found(client_for: Any, manager: User) -> None:
    assert (
        client_for(manager).get(reverse("accounts:user_handover", args=[999999])).status_code == 404
    )


def test_the_form_refuses_the_same_user_with_a_field_error(
    client_for: Any, manager: User, leaver: User
) -> None:
    current_work(leaver)

    response = hand_over(client_for(manager), leaver, to_user=leaver)

    assert response.status_code == 200
    assert response.context["form"].errors == {
        "to_user": [
            f"That is {leaver.get_full_name()}, whose work is being handed over: "
            "choose a colleague."
        ]
    }
    assert services.user_current_work(user=leaver).total == 10


def test_the_form_refuses_a_deactivated_colleague_with_a_field_error(
    client_for: Any, manager: User, leaver: User, colleague: User
) -> None:
    current_work(leaver)
    gone = UserFactory.create(username="gone", first_name="Gina", last_name="Gone")
    gone.is_active = False
    gone.save()

    response = hand_over(client_for(manager), leaver, to_user=colleague, partners_to=gone)

    errors = response.context["form"].errors
    assert errors == {"partners_to": ["Gina Gone is deactivated: choose an active colleague."]}
    assert "Gina Gone is deactivated" in response.content.decode()
    assert services.user_current_work(user=leaver).total == 10


def test_only_active_colleagues_are_offered(
    client_for: Any, manager: User, leaver: User, colleague: User
) -> None:
    UserFactory.create(username="gone", first_name="Gina", last_name="Gone", is_active=False)

    form = client_for(manager).get(page(leaver)).context["form"]

    offered = {label for _, label in form.fields["to_user"].choices}
    assert f"{colleague.get_full_name()} (Practice manager)" in offered
    assert not any("Gina Gone" in label for label in offered)
    assert not any(leaver.get_full_name() in label for label in offered)


def test_the_page_shows_counts_and_no_patient_names(
    client_for: Any, manager: User, leaver: User
) -> None:
    work = current_work(leaver)

    content = client_for(manager).get(page(leaver)).content.decode()

    assert "2 partners" in content
    assert "2 open referrals" in content
    assert "2 planned visits" in content
    for referral in work["referrals"]:
        assert referral.patient_last_name not in content


def test_the_page_reads_the_same_number_of_queries_however_much_work_there_is(
    client_for: Any, manager: User, leaver: User, colleague: User, django_assert_num_queries: Any
) -> None:
    client = client_for(manager)
    current_work(leaver)
    client.get(page(leaver))  # the session and permission caches warm up
    # Session, user, their permissions; the leaver; the colleagues and their roles; the
    # work, counted in one query (posted: the chosen colleague and their permissions, the
    # work counted for the check of roles and again for the page).
    with django_assert_num_queries(7):
        client.get(page(leaver))
    with django_assert_num_queries(10):
        client.post(page(leaver), {"to_user": colleague.pk})

    current_work(leaver)
    current_work(leaver)

    with django_assert_num_queries(7):
        client.get(page(leaver))
    with django_assert_num_queries(10):
        client.post(page(leaver), {"to_user": colleague.pk})


def test_a_manager_hands_over_a_deactivated_liaison_s_work_through_the_pages(
    client_for: Any, manager: User, leaver: User, colleague: User, coordinator: User
) -> None:
    work = current_work(leaver, history_too=True)
    leaver.is_active = False
    leaver.save()
    client = client_for(manager)

    first = client.get(page(leaver))
    assert "Deactivated" in first.content.decode()
    # Between the page and the confirmation, a coordinator takes one referral.
    Referral.objects.filter(pk=work["referrals"][0].pk).update(assigned_to=coordinator)
    review = client.post(page(leaver), {"to_user": colleague.pk, "referrals_to": coordinator.pk})
    summary = review.content.decode()
    assert "2 partners to " + colleague.get_full_name() in summary
    assert "1 open referral to " + coordinator.get_full_name() in summary
    assert services.user_current_work(user=leaver).total == 9  # nothing moved yet

    done = hand_over(client, leaver, to_user=colleague, referrals_to=coordinator)

    assert done.status_code == 302
    assert done["Location"] == page(leaver)
    assert said(done) == [
        f"Handed over {leaver.get_full_name()}'s work: 2 partners, 2 open tasks, "
        f"2 planned visits and 2 upcoming events to {colleague.get_full_name()}; "
        f"1 open referral to {coordinator.get_full_name()}."
    ]
    after = client.get(done["Location"]).content.decode()
    assert "holds no current work" in after
    assert Referral.objects.filter(assigned_to=coordinator).count() == 2
    assert ReferralEvent.objects.filter(kind=ReferralEvent.Kind.ASSIGNMENT).count() == 1


# The team page


def test_the_team_page_shows_each_person_s_work_and_links_to_the_hand_over(
    client_for: Any, manager: User, leaver: User, colleague: User
) -> None:
    current_work(leaver, history_too=True)
    leaver.is_active = False
    leaver.save()

    response = client_for(manager).get(reverse("accounts:team"))

    people = {user.pk: amounts for user, _, amounts in response.context["people"]}
    roles = {user.pk: role for user, role, _ in response.context["people"]}
    assert (roles[leaver.pk], roles[manager.pk]) == (Role.LIAISON, Role.MANAGER)
    assert people[leaver.pk] == [
        "2 partners",
        "2 open referrals",
        "2 open tasks",
        "2 planned visits",
        "2 upcoming events",
    ]
    assert people[colleague.pk] == []
    assert f'href="{page(leaver)}"' in response.content.decode()
    assert f'href="{reverse("accounts:team")}"' in response.content.decode()  # in the menu


def test_the_team_page_is_for_managers_only_and_not_in_their_menu(
    client_for: Any, liaison: User, coordinator: User
) -> None:
    for user in (liaison, coordinator):
        client = client_for(user)
        assert client.get(reverse("accounts:team")).status_code == 403
        assert (
            reverse("accounts:team") not in client.get(reverse("core:dashboard")).content.decode()
        )


def test_the_team_page_reads_the_same_number_of_queries_however_many_people_and_rows(
    client_for: Any, manager: User, leaver: User, django_assert_num_queries: Any
) -> None:
    client = client_for(manager)
    current_work(leaver)
    client.get(reverse("accounts:team"))
    # Session, user, their permissions; how many people; a page of them with their counts;
    # their roles.
    with django_assert_num_queries(6):
        client.get(reverse("accounts:team"))

    for n in range(3):
        current_work(UserFactory.create(username=f"more{n}", role=Role.LIAISON))

    with django_assert_num_queries(6):
        client.get(reverse("accounts:team"))


def test_the_team_page_is_paginated(client_for: Any, manager: User) -> None:
    UserFactory.create_batch(PAGE_SIZE + 4)  # with the manager: PAGE_SIZE + 5 people
    client = client_for(manager)

    first = client.get(reverse("accounts:team"))
    second = client.get(reverse("accounts:team"), {"page": 2})

    assert len(first.context["people"]) == PAGE_SIZE
    assert len(second.context["people"]) == 5
    shown = {user.pk for user, _, _ in first.context["people"] + second.context["people"]}
    assert shown == set(User.objects.values_list("pk", flat=True))
    assert "Page 1 of 2" in first.content.decode()
    assert f"{PAGE_SIZE + 5} in all" in first.content.decode()


# The back office


def test_the_admin_user_page_links_to_the_hand_over(leaver: User) -> None:
    root = UserFactory.create(username="root", is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(root)

    content = client.get(reverse("admin:auth_user_change", args=[leaver.pk])).content.decode()

    assert f'href="{page(leaver)}"' in content


def test_each_handed_over_partner_s_changes_page_says_who_took_it_over_and_why(
    leaver: User, colleague: User, manager: User
) -> None:
    """A queryset update writes no history: the partner's Changes page would show nothing
    of who owns it now. Each partner handed over gets its row: the owner from and to, by
    the manager who handed it over, with the reason."""
    partners = ProviderFactory.create_batch(2, owner=leaver)
    kept = ProviderFactory.create(owner=colleague)

    services.user_work_handover(from_user=leaver, to_user=colleague, actor=manager)

    for provider in partners:
        latest = provider.history.order_by("-history_id").first()
        assert latest.owner_id == colleague.pk
        assert latest.history_user_id == manager.pk
        assert latest.history_change_reason == f"Work handed over from {person(leaver)}"
        assert latest.history_type == "~"
    assert not kept.history.filter(history_change_reason__startswith="Work handed").exists()
    client = Client()
    client.force_login(manager)
    body = client.get(reverse("partners:provider_history", args=[partners[0].pk])).content
    text = body.decode()
    assert f"Work handed over from {escape(person(leaver))}" in text
    assert escape(person(colleague)) in text
