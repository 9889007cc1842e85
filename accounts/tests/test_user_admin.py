"""Staff who leave are deactivated in the back office, not deleted: their name stays on
everything they did."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.admin.models import ADDITION, LogEntry
from django.contrib.auth.models import User
from django.contrib.messages import get_messages
from django.test import Client
from django.urls import reverse
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from knox.models import AuthToken

from accounts import services
from audit.models import PatientDataAccess
from audit.services import audit_record
from core.factories import DEMO_PASSWORD, UserFactory
from outreach.factories import ActivityFactory, TaskFactory
from partners.factories import ProviderFactory

pytestmark = pytest.mark.django_db


def said(response: Any) -> list[str]:
    return [str(message) for message in get_messages(response.wsgi_request)]


def delete(client: Client, user: User) -> Any:
    return client.post(reverse("admin:auth_user_delete", args=[user.pk]), {"post": "yes"})


def change_form_data(client: Client, user: User) -> dict[str, Any]:
    """What the user's admin page posts when saved unchanged."""
    form = client.get(reverse("admin:auth_user_change", args=[user.pk])).context["adminform"].form
    data = {
        name: value
        for name, field in form.fields.items()
        if (value := form[name].value()) not in (None, False) and not field.disabled
    }
    data["groups"] = [group.pk for group in user.groups.all()]
    data.update(
        {
            "last_login_0": "",
            "last_login_1": "",
            "date_joined_0": f"{user.date_joined:%Y-%m-%d}",
            "date_joined_1": f"{user.date_joined:%H:%M:%S}",
        }
    )
    return data


def bulk(client: Client, action: str, users: list[User]) -> Any:
    return client.post(
        reverse("admin:auth_user_changelist"),
        {"action": action, "_selected_action": [u.pk for u in users], "post": "yes"},
    )


def test_a_user_named_on_history_is_not_deleted_and_the_page_says_why(
    back_office: Client, liaison: User
) -> None:
    activities = ActivityFactory.create_batch(2, logged_by=liaison)

    page = back_office.get(reverse("admin:auth_user_delete", args=[liaison.pk]))
    response = delete(back_office, liaison)

    for answer in (page, response):
        assert answer.status_code == 302
        assert answer["Location"] == reverse("admin:auth_user_change", args=[liaison.pk])
    assert "Not deleted: liaison is named on 2 activities." in said(response)[0]
    assert "Use the Deactivate action instead" in said(response)[0]
    assert back_office.get(response["Location"]).status_code == 200
    assert User.objects.filter(pk=liaison.pk).exists()
    for activity in activities:
        activity.refresh_from_db()
        assert activity.logged_by == liaison


def test_a_user_on_the_patient_data_audit_trail_is_refused_the_same_way(
    back_office: Client, coordinator: User
) -> None:
    audit_record(action=PatientDataAccess.Action.VIEW, referral_ids=[41], user=coordinator)

    response = delete(back_office, coordinator)

    assert response.status_code == 302
    assert "coordinator is named on 1 patient data access" in said(response)[0]
    assert User.objects.filter(pk=coordinator.pk).exists()


def test_deleting_several_users_is_refused_if_any_of_them_has_history(
    back_office: Client, liaison: User
) -> None:
    ActivityFactory.create(logged_by=liaison)
    mistake = UserFactory.create(username="typo")

    response = bulk(back_office, "delete_selected", [liaison, mistake])

    assert "liaison is named on 1 activity" in said(response)[0]
    assert "typo" not in said(response)[0]
    assert User.objects.filter(pk__in=[liaison.pk, mistake.pk]).count() == 2


def test_a_user_without_history_can_still_be_deleted(back_office: Client) -> None:
    mistake = UserFactory.create(username="typo")
    other = UserFactory.create(username="typo2")

    assert back_office.get(reverse("admin:auth_user_delete", args=[mistake.pk])).status_code == 200
    delete(back_office, mistake)
    bulk(back_office, "delete_selected", [other])

    assert not User.objects.filter(username__in=["typo", "typo2"]).exists()


def test_user_history_counts_every_reference_that_deleting_would_lose(
    liaison: User, manager: User
) -> None:
    assert services.user_history(user=liaison) == {}
    ActivityFactory.create(logged_by=liaison)
    audit_record(action=PatientDataAccess.Action.VIEW, referral_ids=[1, 2], user=liaison)
    LogEntry.objects.create(user=liaison, action_flag=ADDITION, object_repr="Dr. Reyes")
    # What belongs to the account and goes with it is not history.
    TOTPDevice.objects.create(user=liaison, name="app")

    assert services.user_history(user=liaison) == {
        "activity": 1,
        "patient data accesses": 2,
        "log entry": 1,
    }
    assert services.user_history(user=manager) == {}


def test_deactivating_signs_the_user_out_everywhere_and_keeps_their_name(
    back_office: Client, manager: User, liaison: User
) -> None:
    activity = ActivityFactory.create(logged_by=manager)
    services.authenticator_confirm(device=services.authenticator_pending(user=manager))
    AuthToken.objects.create(user=manager)
    phone, colleague = Client(), Client()
    phone.force_login(manager)
    colleague.force_login(liaison)

    response = bulk(back_office, "deactivate", [manager])

    assert "Deactivated and signed out: manager." in said(response)[0]
    manager.refresh_from_db()
    assert not manager.is_active
    assert phone.get(reverse("core:dashboard"))["Location"].startswith(reverse("login"))
    assert colleague.get(reverse("core:dashboard")).status_code == 200
    assert not TOTPDevice.objects.filter(user=manager).exists()
    assert not StaticDevice.objects.filter(user=manager).exists()
    assert not AuthToken.objects.filter(user=manager).exists()
    activity.refresh_from_db()
    assert activity.logged_by == manager
    # Nor can they sign in again.
    signing_in = Client()
    signing_in.post(reverse("login"), {"username": "manager", "password": DEMO_PASSWORD})
    assert "_auth_user_id" not in signing_in.session


def test_deactivating_someone_who_holds_work_says_what_and_links_to_the_hand_over(
    back_office: Client, liaison: User, coordinator: User
) -> None:
    ProviderFactory.create_batch(2, owner=liaison)
    TaskFactory.create(assignee=liaison)

    response = bulk(back_office, "deactivate", [liaison, coordinator])

    messages = said(response)
    assert messages[0] == (
        "Deactivated and signed out: coordinator and liaison. Everything they did keeps their name."
    )
    hand_over = reverse("accounts:user_handover", args=[liaison.pk])
    assert messages[1:] == [
        f"{liaison.get_full_name()} still holds 2 partners and 1 open task: "
        f'<a href="{hand_over}">hand it over</a>.'
    ]


def test_unticking_active_on_the_user_s_page_deactivates_them_as_the_action_does(
    back_office: Client, manager: User
) -> None:
    services.authenticator_confirm(device=services.authenticator_pending(user=manager))
    AuthToken.objects.create(user=manager)
    TaskFactory.create(assignee=manager)
    url = reverse("admin:auth_user_change", args=[manager.pk])
    data = change_form_data(back_office, manager)
    data.pop("is_active")

    response = back_office.post(url, data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    manager.refresh_from_db()
    assert not manager.is_active
    # Reactivated one day, the account must not find its old phone and tokens working.
    assert not TOTPDevice.objects.filter(user=manager).exists()
    assert not StaticDevice.objects.filter(user=manager).exists()
    assert not AuthToken.objects.filter(user=manager).exists()
    hand_over = reverse("accounts:user_handover", args=[manager.pk])
    assert (
        f'{manager.get_full_name()} still holds 1 open task: <a href="{hand_over}">hand it over</a>.'
        in said(response)
    )


def test_an_administrator_cannot_deactivate_themselves(
    back_office: Client, superuser: User, liaison: User
) -> None:
    response = bulk(back_office, "deactivate", [superuser, liaison])

    assert "You cannot deactivate yourself." in said(response)
    superuser.refresh_from_db()
    liaison.refresh_from_db()
    assert superuser.is_active
    assert not liaison.is_active
    assert back_office.get(reverse("admin:index")).status_code == 200


def test_an_administrator_cannot_deactivate_themselves_on_their_own_page_either(
    back_office: Client, superuser: User
) -> None:
    # The only administrator, unticking Active by mistake, would lock the practice out of
    # the back office.
    data = change_form_data(back_office, superuser)
    data.pop("is_active", None)

    back_office.post(reverse("admin:auth_user_change", args=[superuser.pk]), data)

    superuser.refresh_from_db()
    assert superuser.is_active
    assert back_office.get(reverse("admin:index")).status_code == 200


def test_the_admin_refuses_a_second_role_group_saying_why(
    back_office: Client, liaison: User
) -> None:
    from django.contrib.auth.models import Group

    from core.roles import Role

    roles = Group.objects.filter(name__in=[Role.LIAISON, Role.COORDINATOR])
    data = change_form_data(back_office, liaison)
    data["groups"] = [group.pk for group in roles]

    response = back_office.post(reverse("admin:auth_user_change", args=[liaison.pk]), data)

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors["groups"]
    assert errors == [
        "A user has one role: choose Liaison or Referral coordinator, not both. Each role "
        "sees different patient data; a user in two would be limited to the narrower one."
    ]
    assert set(liaison.groups.values_list("name", flat=True)) == {Role.LIAISON}


def test_the_admin_saves_one_role_group_with_groups_that_are_no_role(
    back_office: Client, liaison: User
) -> None:
    from django.contrib.auth.models import Group

    from core.roles import Role

    extra = Group.objects.create(name="Newsletter editors")
    coordinator_group = Group.objects.get(name=Role.COORDINATOR)
    data = change_form_data(back_office, liaison)
    data["groups"] = [coordinator_group.pk, extra.pk]

    response = back_office.post(reverse("admin:auth_user_change", args=[liaison.pk]), data)

    assert response.status_code == 302, response.context["adminform"].form.errors
    assert set(liaison.groups.values_list("name", flat=True)) == {
        Role.COORDINATOR,
        "Newsletter editors",
    }


def test_the_user_list_names_users_still_in_several_role_groups(
    back_office: Client, liaison: User, coordinator: User
) -> None:
    from django.contrib.auth.models import Group

    from core.roles import Role

    liaison.groups.add(Group.objects.get(name=Role.MANAGER))
    coordinator.groups.add(Group.objects.create(name="Newsletter editors"))  # no role: fine

    response = back_office.get(reverse("admin:auth_user_changelist"))

    assert said(response) == [
        "In several role groups, so holding only the permissions of the least privileged "
        "one: liaison (Liaison). Give each user one role."
    ]


def test_the_user_list_says_nothing_when_everyone_has_one_role(
    back_office: Client, liaison: User, coordinator: User
) -> None:
    response = back_office.get(reverse("admin:auth_user_changelist"))
    assert said(response) == []
