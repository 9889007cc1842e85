"""The nightly rekindle queue: partners who slipped away, with the reasons."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from django.utils import timezone

from core.factories import UserFactory
from outreach.factories import TaskFactory
from outreach.models import Activity, Task
from outreach.services.rekindle import rekindle_queue_build
from outreach.tasks import build_rekindle_queue
from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory
from registry.factories import RegistryProviderFactory

pytestmark = pytest.mark.django_db


def _referrals(provider, *days_ago):
    now = timezone.now()
    for days in days_ago:
        ReferralFactory(provider=provider, received_at=now - timedelta(days=days))


def _touch(provider, days_ago, next_step=""):
    activity = Activity.objects.create(
        occurred_at=timezone.now() - timedelta(days=days_ago), next_step=next_step
    )
    activity.providers.add(provider)


def test_a_partner_whose_referrals_stopped_gets_a_task_with_the_reasons_and_last_next_step():
    owner = UserFactory()
    provider = ProviderFactory(owner=owner, last_name="Pilcher")
    _referrals(provider, 100, 120, 150, 170)
    _touch(provider, 40, next_step="Bring the new MRI schedule")

    [task] = rekindle_queue_build()

    assert (task.kind, task.assignee, task.provider) == (Task.Kind.REKINDLE, owner, provider)
    assert task.due_on == timezone.localdate()
    assert "Referrals dropped from 4 to 0" in task.detail
    assert "No referral for 100 days." in task.detail
    assert "Last touch 40 days ago." in task.detail
    assert "Last next step: Bring the new MRI schedule" in task.detail


def test_a_drop_with_a_referral_this_week_does_not_read_as_a_silence():
    provider = ProviderFactory(owner=UserFactory())
    _referrals(provider, 1, 100, 120, 150, 170)

    [task] = rekindle_queue_build()

    assert "Referrals dropped from 4 to 1" in task.detail
    assert "Last referral 1 day ago." in task.detail
    assert "No referral for" not in task.detail


def test_running_it_again_creates_no_second_task():
    provider = ProviderFactory(owner=UserFactory())
    _referrals(provider, 75)
    rekindle_queue_build()
    build_rekindle_queue()
    assert Task.objects.filter(provider=provider, kind=Task.Kind.REKINDLE).count() == 1


def test_a_partner_touched_recently_or_still_referring_is_left_alone():
    touched = ProviderFactory(owner=UserFactory())
    _referrals(touched, 100, 120, 150)
    _touch(touched, 5)
    steady = ProviderFactory(owner=UserFactory())
    _referrals(steady, 10, 40, 100, 150)
    unowned = ProviderFactory(owner=None)
    _referrals(unowned, 100, 120)
    assert rekindle_queue_build() == []


def test_a_done_rekindle_task_and_an_open_follow_up_do_not_keep_a_partner_out():
    owner = UserFactory()
    provider = ProviderFactory(owner=owner)
    _referrals(provider, 75)
    TaskFactory(provider=provider, assignee=owner, kind=Task.Kind.REKINDLE, status="done")
    TaskFactory(provider=provider, assignee=owner, kind=Task.Kind.FOLLOW_UP)

    [task] = rekindle_queue_build()

    assert (task.provider, task.status) == (provider, Task.Status.OPEN)


def test_the_queue_takes_the_same_queries_however_many_partners(django_assert_num_queries):
    owner = UserFactory()
    provider = ProviderFactory(owner=owner)
    _referrals(provider, 80)
    with django_assert_num_queries(5) as few:
        rekindle_queue_build()
    for _ in range(10):
        _referrals(ProviderFactory(owner=owner), 70, 100)
    with django_assert_num_queries(len(few.captured_queries)):
        tasks = rekindle_queue_build()
    assert len(tasks) == 10


def test_the_owner_reads_the_reasons_on_the_task_page(client_for, liaison):
    provider = ProviderFactory(owner=liaison)
    _referrals(provider, 75)
    [task] = rekindle_queue_build()
    page = client_for(liaison).get(task.get_absolute_url()).content.decode()
    assert "No referral for 75 days." in page
    assert "Never visited or called." in page


def test_a_partner_with_a_long_name_does_not_stop_the_queue_for_everyone():
    # Names and credential at their longest: the task's title must still fit its column.
    long_named = ProviderFactory(
        owner=UserFactory(), first_name="F" * 100, last_name="L" * 100, credential="C" * 50
    )
    other = ProviderFactory(owner=UserFactory())
    _referrals(long_named, 100, 120, 150, 170)
    _referrals(other, 100, 120, 150, 170)

    tasks = rekindle_queue_build()

    assert {task.provider for task in tasks} == {long_named, other}
    assert all(len(task.title) <= 200 for task in tasks)


def test_a_partner_whose_npi_was_deactivated_is_named_so_in_the_reasons_first():
    gone = ProviderFactory(owner=UserFactory())
    _referrals(gone, 100, 120)
    RegistryProviderFactory(npi=gone.npi, deactivated=True, deactivation_date=date(2026, 3, 31))
    practising = ProviderFactory(owner=UserFactory())
    _referrals(practising, 100, 120)
    RegistryProviderFactory(npi=practising.npi, deactivated=False)

    tasks = {task.provider_id: task for task in rekindle_queue_build()}

    first_reason = tasks[gone.pk].detail.splitlines()[0]
    assert first_reason == (
        "The NPPES registry lists their NPI as deactivated since Mar 31, 2026: they may "
        "have retired or left practice. Check before courting them; if they have, set "
        "them dormant."
    )
    assert "deactivated" not in tasks[practising.pk].detail
