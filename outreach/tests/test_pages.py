import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from outreach.factories import PlannedVisitFactory, TaskFactory
from outreach.models import Activity, LetterTemplate, Task
from partners.factories import OrganizationFactory, ProviderFactory, StaffMemberFactory

pytestmark = pytest.mark.django_db


def test_my_tasks_lists_only_mine(client_for, liaison, other_liaison):
    TaskFactory(assignee=liaison, title="Bring lunch to Kearney")
    TaskFactory(assignee=other_liaison, title="Call Dr. Pilcher")
    page = client_for(liaison).get(reverse("outreach:task_list")).content.decode()
    assert "Bring lunch to Kearney" in page
    assert "Call Dr. Pilcher" not in page


def test_a_task_is_visible_to_its_assignee_and_managers_only(
    client_for, liaison, other_liaison, manager, coordinator
):
    task = TaskFactory(assignee=liaison)
    url = task.get_absolute_url()
    assert client_for(liaison).get(url).status_code == 200
    assert client_for(manager).get(url).status_code == 200
    assert client_for(other_liaison).get(url).status_code == 404
    assert client_for(coordinator).get(url).status_code == 404


def test_marking_a_task_done_with_htmx_returns_the_row(client_for, liaison):
    task = TaskFactory(assignee=liaison, title="Send the report")
    response = client_for(liaison).post(
        reverse("outreach:task_complete", args=[task.pk]), HTTP_HX_REQUEST="true"
    )
    task.refresh_from_db()
    assert task.status == Task.Status.DONE
    assert "<html" not in response.content.decode()
    assert "Done" in response.content.decode()


def test_someone_elses_task_cannot_be_completed_by_url(client_for, liaison, other_liaison):
    task = TaskFactory(assignee=liaison)
    response = client_for(other_liaison).post(reverse("outreach:task_complete", args=[task.pk]))
    assert response.status_code == 404
    task.refresh_from_db()
    assert task.status == Task.Status.OPEN


def test_logging_a_visit_with_a_next_step_creates_a_follow_up(client_for, liaison):
    office = OrganizationFactory()
    provider = ProviderFactory(organization=office, owner=liaison)
    staff = StaffMemberFactory(organization=office)
    due = (timezone.localdate() + timezone.timedelta(days=7)).isoformat()
    response = client_for(liaison).post(
        reverse("outreach:activity_create"),
        {
            "provider": provider.pk,
            "kind": "lunch",
            "occurred_at": "2026-11-20T12:00",
            "providers": [provider.pk],
            "staff": [staff.pk],
            "notes": "They prefer faxed updates.",
            "next_step": "Send the consult-turnaround report",
            "next_step_due": due,
        },
    )
    assert response.status_code == 302
    activity = Activity.objects.get()
    assert activity.organization == office
    assert list(activity.staff.all()) == [staff]
    follow_up = Task.objects.get(activity=activity)
    assert (follow_up.assignee, follow_up.due_on.isoformat()) == (liaison, due)
    assert follow_up.title == "Send the consult-turnaround report"


def test_a_follow_up_from_a_visit_with_the_staff_only_names_their_office_in_my_tasks(
    client_for, liaison
):
    office = OrganizationFactory(name="Harbor Family Practice")
    ProviderFactory(organization=office, owner=liaison)
    staff = StaffMemberFactory(organization=office)
    client = client_for(liaison)
    client.post(
        reverse("outreach:activity_create"),
        {
            "organization": office.pk,
            "kind": "drop_in",
            "occurred_at": "2026-11-20T12:00",
            "staff": [staff.pk],
            "next_step": "Bring the new referral pads",
        },
    )
    follow_up = Task.objects.get(title="Bring the new referral pads")
    assert follow_up.provider is None
    page = client.get(reverse("outreach:task_list")).content.decode()
    assert "Follow-up · due" in page and "· Harbor Family Practice" in page


def test_a_next_step_logged_from_a_partners_page_is_that_partners_next_step(client_for, liaison):
    office = OrganizationFactory()
    colleague = ProviderFactory(organization=office, owner=liaison, last_name="Abbott")
    partner = ProviderFactory(organization=office, owner=liaison, last_name="Whitfield")
    client = client_for(liaison)
    response = client.post(
        reverse("outreach:activity_create"),
        {
            "provider": partner.pk,
            "kind": "visit",
            "occurred_at": "2026-11-20T12:00",
            "providers": [partner.pk, colleague.pk],
            "next_step": "Send Dr. Whitfield the new MRI hours",
        },
    )
    assert response.status_code == 302
    follow_up = Task.objects.get(kind=Task.Kind.FOLLOW_UP)
    assert follow_up.provider == partner
    # The partner's page offers it (to open and mark done), not the colleague's.
    assert follow_up.get_absolute_url() in client.get(partner.get_absolute_url()).content.decode()
    assert (
        follow_up.get_absolute_url()
        not in client.get(colleague.get_absolute_url()).content.decode()
    )


def test_a_next_step_longer_than_a_task_title_is_kept_whole_in_its_follow_up(client_for, liaison):
    provider = ProviderFactory(owner=liaison)
    step = "Bring the sports-medicine referral pads and" + " the new MRI hours" * 14
    assert 200 < len(step) <= 300
    response = client_for(liaison).post(
        reverse("outreach:activity_create"),
        {
            "provider": provider.pk,
            "kind": "drop_in",
            "occurred_at": "2026-11-20T12:00",
            "providers": [provider.pk],
            "next_step": step,
        },
    )
    assert response.status_code == 302
    follow_up = Task.objects.get(kind=Task.Kind.FOLLOW_UP)
    assert len(follow_up.title) == 200 and follow_up.title.endswith("…")
    assert step.startswith(follow_up.title[:-1])
    assert follow_up.detail == step


def test_a_next_step_left_without_a_date_is_still_a_follow_up_due_a_week_later(client_for, liaison):
    provider = ProviderFactory(owner=liaison)
    response = client_for(liaison).post(
        reverse("outreach:activity_create"),
        {
            "provider": provider.pk,
            "kind": "lunch",
            "occurred_at": "2026-11-20T12:00",
            "providers": [provider.pk],
            "next_step": "Bring lunch next week",
            "next_step_due": "",
        },
    )
    assert response.status_code == 302
    activity = Activity.objects.get()
    follow_up = Task.objects.get(activity=activity)
    assert follow_up.due_on.isoformat() == "2026-11-27"
    assert activity.next_step_due == follow_up.due_on


def test_a_next_step_due_before_the_activity_is_refused_with_the_date(client_for, liaison):
    provider = ProviderFactory(owner=liaison)
    response = client_for(liaison).post(
        reverse("outreach:activity_create"),
        {
            "provider": provider.pk,
            "kind": "call",
            "occurred_at": "2026-11-20T12:00",
            "providers": [provider.pk],
            "next_step": "Send the referral pad",
            "next_step_due": "2026-11-01",
        },
    )
    assert response.status_code == 200
    assert "cannot be due before the activity (Nov 20, 2026)" in response.content.decode()
    assert not Activity.objects.exists()


def test_a_due_date_without_a_next_step_is_refused(client_for, liaison):
    provider = ProviderFactory(owner=liaison)
    response = client_for(liaison).post(
        reverse("outreach:activity_create"),
        {
            "provider": provider.pk,
            "kind": "visit",
            "occurred_at": "2026-11-20T12:00",
            "notes": "Quick drop-in",
            "next_step_due": "2026-12-01",
        },
    )
    assert response.status_code == 200
    assert "Say what the next step is" in response.content.decode()
    assert "Quick drop-in" in response.content.decode()
    assert not Activity.objects.exists()


def test_attendees_from_another_office_are_refused(client_for, liaison):
    provider = ProviderFactory(owner=liaison)
    outsider = ProviderFactory()
    response = client_for(liaison).post(
        reverse("outreach:activity_create"),
        {
            "provider": provider.pk,
            "kind": "visit",
            "occurred_at": "2026-11-20T12:00",
            "providers": [outsider.pk],
        },
    )
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()


def test_a_template_with_an_unknown_merge_field_is_refused(client_for, manager):
    template = LetterTemplate.objects.create(kind="thank_you", subject="Hi", body="Hello")
    response = client_for(manager).post(
        reverse("outreach:template_update", args=[template.pk]),
        {"subject": "Hi {{ patient_name }}", "body": "x", "delay_business_days": 2},
    )
    assert "Unknown merge field(s): patient_name" in response.content.decode()
    template.refresh_from_db()
    assert template.subject == "Hi"


def test_every_letter_as_first_shipped_passes_its_own_editor():
    from outreach.forms import LetterTemplateForm
    from outreach.services.letters import DEFAULT_TEMPLATES

    for kind, text in DEFAULT_TEMPLATES.items():
        form = LetterTemplateForm(data=text, instance=LetterTemplate(kind=kind))
        assert form.is_valid(), (kind, form.errors)


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        ("thank_you", "See you at {{ event_name }}", "has no event_name to fill in"),
        ("event_reminder", "For {{ patient_initials }}", "has no patient_initials to fill in"),
        ("thank_you", "Sorry: {{ decline_reason }}", "has no decline_reason to fill in"),
        ("thank_you", "{% if seen_date %}Seen{% endif %}", "remove the other braces"),
        ("thank_you", "Dear {{ provider_name | upper }}", "remove the other braces"),
    ],
)
def test_a_merge_field_this_kind_of_letter_cannot_fill_is_refused(
    client_for, manager, kind, text, message
):
    from outreach.services.letters import letter_template_for

    template = letter_template_for(kind)
    before = template.body
    response = client_for(manager).post(
        reverse("outreach:template_update", args=[template.pk]),
        {"subject": template.subject, "body": text, "delay_business_days": 0},
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    template.refresh_from_db()
    assert template.body == before


def test_the_editor_lists_only_the_merge_fields_its_letter_fills(client_for, manager):
    from outreach.services.letters import letter_template_for

    template = letter_template_for("event_reminder")
    page = client_for(manager).get(reverse("outreach:template_update", args=[template.pk]))
    html = page.content.decode()
    assert "<code>event_place</code>" in html and "<code>provider_name</code>" in html
    assert "<code>patient_initials</code>" not in html


def test_only_managers_edit_letter_templates(client_for, coordinator, liaison):
    assert client_for(coordinator).get(reverse("outreach:template_list")).status_code == 403
    assert client_for(liaison).get(reverse("outreach:template_list")).status_code == 403


def test_every_kind_of_letter_has_a_default_text_whose_preview_fills_every_field(
    client_for, manager
):
    from outreach.models.merge_fields import MERGE_FIELD, unknown_merge_fields

    client = client_for(manager)
    assert client.get(reverse("outreach:template_list")).status_code == 200
    assert set(LetterTemplate.objects.values_list("kind", flat=True)) == set(
        LetterTemplate.Kind.values
    )
    for template in LetterTemplate.objects.all():
        assert template.subject and template.body, template.kind
        assert not unknown_merge_fields(template.subject + template.body), template.kind
        preview = client.post(
            reverse("outreach:template_preview", args=[template.pk]),
            {
                "subject": template.subject,
                "body": template.body,
                "delay_business_days": template.delay_business_days,
            },
        )
        assert preview.status_code == 200, template.kind
        assert not MERGE_FIELD.search(preview.content.decode()), template.kind


def test_the_activity_form_keeps_a_draft_and_is_saved_in_place(client_for, liaison):
    provider = ProviderFactory(owner=liaison)
    client = client_for(liaison)
    url = reverse("outreach:activity_create") + f"?provider={provider.pk}"
    page = client.get(url).content.decode()
    assert f'data-draft-key="activity-u{liaison.pk}-p{provider.pk}" data-draft-restore' in page
    saved = client.post(
        url,
        {"provider": provider.pk, "kind": "call", "occurred_at": "2026-11-20T12:00"},
        HTTP_HX_REQUEST="true",
    )
    # A success for the page's script: it drops the draft and follows the redirect.
    assert (saved.status_code, saved["HX-Redirect"]) == (204, provider.get_absolute_url())
    assert Activity.objects.get().kind == "call"


def test_a_draft_kept_on_a_shared_device_comes_back_only_to_whoever_typed_it(
    client_for, liaison, other_liaison
):
    # Drafts outlive signing out (an idle logoff must not lose them): a colleague who
    # signs in next on the same browser must not be handed them.
    provider = ProviderFactory(owner=liaison)
    url = reverse("outreach:activity_create") + f"?provider={provider.pk}"
    keys = {
        re.search(r'data-draft-key="([^"]+)"', client_for(user).get(url).content.decode())[1]
        for user in (liaison, other_liaison)
    }
    assert len(keys) == 2
    visit = PlannedVisitFactory(liaison=liaison)
    page = client_for(liaison).get(reverse("outreach:planned_visit_log", args=[visit.pk]))
    assert f'data-draft-key="planned-visit-u{liaison.pk}-{visit.pk}"' in page.content.decode()


def test_a_task_links_its_referral_and_letters_only_for_those_who_may_open_them(
    client_for, liaison, other_liaison, manager, coordinator
):
    """The partner changed hands: the old liaison keeps the thank-you task, but the
    referral and its letter are now the new owner's to open."""
    from outreach.models import Letter
    from referrals.factories import ReferralFactory

    provider = ProviderFactory(owner=other_liaison)
    referral = ReferralFactory(provider=provider, assigned_to=coordinator)
    letter = Letter.objects.create(
        kind=LetterTemplate.Kind.THANK_YOU,
        referral=referral,
        provider=provider,
        subject="Thank you for referring R.O.",
        body="Dear Dr. Wiebe,\n\nThank you.",
        due_on=timezone.localdate(),
        message_id="<task-page@test>",
    )
    task = TaskFactory(assignee=liaison, provider=provider, referral=referral)

    mine = client_for(liaison).get(task.get_absolute_url()).content.decode()
    assert letter.get_absolute_url() not in mine and referral.get_absolute_url() not in mine
    assert f"#{referral.pk}" in mine and "letter (" in mine  # still said, as text
    everything = client_for(manager).get(task.get_absolute_url()).content.decode()
    assert letter.get_absolute_url() in everything and referral.get_absolute_url() in everything


IN_THREE_DAYS = f"{timezone.localtime() + timedelta(days=3):%Y-%m-%dT%H:%M}"


@pytest.mark.parametrize(
    ("occurred_at", "message"),
    [
        ("9999-12-31T23:59", "When cannot be in the future"),
        (IN_THREE_DAYS, "When cannot be in the future"),
        ("1900-01-01T09:00", "When: choose a date between Jan 1, 2000 and"),
    ],
)
def test_an_activity_when_out_of_reach_is_refused_and_every_page_still_opens(
    client_for, liaison, occurred_at, message
):
    provider = ProviderFactory(owner=liaison)
    client = client_for(liaison)
    response = client.post(
        reverse("outreach:activity_create"),
        {
            "provider": provider.pk,
            "kind": "lunch",
            "occurred_at": occurred_at,
            "providers": [provider.pk],
            "notes": "Lunch",
        },
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert not Activity.objects.exists()
    assert client.get(provider.get_absolute_url()).status_code == 200


@pytest.mark.parametrize("due_on", ["0001-01-01", "9999-12-31", "1999-12-31"])
def test_a_task_due_far_away_is_refused_with_the_range(client_for, liaison, due_on):
    response = client_for(liaison).post(
        reverse("outreach:task_create"),
        {"title": "Call back", "due_on": due_on, "assignee": liaison.pk},
    )
    assert response.status_code == 200
    assert "Due: choose a date between Jan 1, 2000 and" in response.content.decode()
    assert not Task.objects.exists()


def test_a_task_due_years_away_shows_its_year_in_the_lists(client_for, liaison):
    due = timezone.localdate() + timedelta(days=3 * 365)
    TaskFactory(assignee=liaison, title="Renew the Qorvane agreement", due_on=due)
    page = client_for(liaison).get(reverse("outreach:task_list")).content.decode()
    assert f"due {due:%a %b} {due.day}, {due.year}" in page


def test_done_tasks_closed_at_the_same_moment_are_each_on_one_page(client_for, manager):
    """Tasks closed together share their completion time to the microsecond (the
    annual-meeting reminders an event closes, a referral's consult report reminders):
    paging through the Done list shows each of them once, none twice and none never."""
    tasks = TaskFactory.create_batch(300, assignee=manager)
    Task.objects.update(status=Task.Status.DONE, completed_at=timezone.now() - timedelta(days=3))
    # Some of them edited since (a title corrected), as rows are in a real table.
    for task in tasks[::3]:
        Task.objects.filter(pk=task.pk).update(title=f"{task.title} (corrected)")
    client = client_for(manager)

    seen = []
    for page in range(1, 13):
        response = client.get(reverse("outreach:task_list"), {"state": "done", "page": page})
        seen += [task.pk for task in response.context["page"]]

    assert sorted(seen) == sorted(task.pk for task in tasks)
