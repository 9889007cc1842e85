"""Newsletters: a manager picks the audience, sees its size and a preview, and sends; a
worker makes one letter per partner by each partner's channel, exactly once."""

from __future__ import annotations

import re
from datetime import timedelta
from unittest import mock

import pytest
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone

from core.factories import UserFactory
from core.roles import Role
from outreach import newsletters
from outreach.forms_newsletters import NewsletterForm
from outreach.models import Letter, LetterTemplate, NewsletterIssue
from partners.factories import ProviderFactory
from partners.models import Provider

pytestmark = pytest.mark.django_db

K = LetterTemplate.Kind


def _issue(**fields) -> NewsletterIssue:
    fields.setdefault("subject", "News from {{ practice_name }}")
    fields.setdefault("body", "Dear {{ provider_name }},\n\nOur new MRI is open.")
    return NewsletterIssue.objects.create(**fields)


def test_the_audience_narrows_by_tier_health_owner_and_specialty():
    owner = UserFactory(role=Role.LIAISON)
    a = ProviderFactory(tier="A", health="active", owner=owner, specialty="Family Medicine")
    b = ProviderFactory(tier="B", health="at_risk", specialty="Internal Medicine")
    ProviderFactory(tier="A", status=Provider.Status.PROSPECT)  # not a partner yet

    assert set(newsletters.audience()) == {a, b}
    assert list(newsletters.audience(tiers=["A"])) == [a]
    assert list(newsletters.audience(health=["at_risk"])) == [b]
    assert list(newsletters.audience(owner_id=owner.pk)) == [a]
    assert list(newsletters.audience(specialty="family")) == [a]
    assert list(newsletters.audience(tiers=["B"], specialty="family")) == []


def test_preparing_makes_one_letter_per_partner_by_their_channel_once():
    emailed = ProviderFactory(email="dr.a@example.org")
    faxed = ProviderFactory(email="", preferred_channel=Provider.PreferredChannel.FAX)
    faxed.organization.email, faxed.organization.fax = "", "555-010-3000"
    faxed.organization.save()
    opted_out = ProviderFactory(email="c@example.org", letters_opt_out=True)
    issue = _issue()

    pending = newsletters.newsletter_prepare(issue_id=issue.pk)
    again = newsletters.newsletter_prepare(issue_id=issue.pk)

    letters = {letter.provider_id: letter for letter in issue.letters.all()}
    assert set(letters) == {emailed.pk, faxed.pk, opted_out.pk}
    assert letters[emailed.pk].channel == Letter.Channel.EMAIL
    assert letters[emailed.pk].recipient == "dr.a@example.org"
    assert letters[faxed.pk].channel == Letter.Channel.FAX
    assert letters[opted_out.pk].status == Letter.Status.SKIPPED
    assert sorted(pending) == sorted([letters[emailed.pk].pk, letters[faxed.pk].pk])
    assert again == pending
    assert emailed.display_name in letters[emailed.pk].body
    assert {letter.kind for letter in letters.values()} == {K.NEWSLETTER}
    issue.refresh_from_db()
    assert (issue.state, issue.audience_size, issue.prepared_count) == ("sent", 3, 3)


def test_preparing_in_chunks_queries_per_chunk_not_per_partner(django_assert_max_num_queries):
    for _ in range(30):
        ProviderFactory(email="x@example.org")
    issue = _issue()
    with mock.patch.object(newsletters, "CHUNK", 10), django_assert_max_num_queries(25):
        newsletters.newsletter_prepare(issue_id=issue.pk)
    assert issue.letters.count() == 30


def test_the_database_refuses_a_second_letter_for_the_same_issue_and_partner():
    ProviderFactory(email="x@example.org")
    issue = _issue()
    newsletters.newsletter_prepare(issue_id=issue.pk)
    letter = issue.letters.get()
    letter.pk, letter.message_id = None, "<dup@example>"
    with pytest.raises(IntegrityError), transaction.atomic():
        letter.save()


def test_a_send_whose_worker_died_is_re_driven_by_the_sweep_once_stale():
    issue = _issue()
    assert newsletters.newsletters_to_redrive() == []
    NewsletterIssue.objects.filter(pk=issue.pk).update(
        state="preparing", heartbeat_at=timezone.now() - timedelta(minutes=5)
    )
    assert newsletters.newsletters_to_redrive() == [issue.pk]
    assert newsletters.newsletters_to_redrive() == []  # the re-drive touched it


def test_patient_merge_fields_are_refused_in_a_newsletter(client_for, manager):
    response = client_for(manager).post(
        reverse("outreach:newsletter_create"),
        {"subject": "News", "body": "Your patient {{ patient_initials }} says hi"},
    )
    assert response.status_code == 200
    assert "carries no patient data" in response.content.decode()
    assert not NewsletterIssue.objects.exists()


def test_the_manager_sees_the_audience_size_and_a_preview(client_for, manager):
    ProviderFactory(tier="A", last_name="Aardvark", first_name="Ann", credential="MD")
    ProviderFactory(tier="B")
    client = client_for(manager)

    page = client.get(reverse("outreach:newsletter_create"))
    preview = client.post(
        reverse("outreach:newsletter_preview"),
        {
            "subject": "Hello {{ provider_last_name }}",
            "body": "Dear {{ provider_name }}",
            "tiers": ["A"],
        },
        HTTP_HX_REQUEST="true",
    )

    assert page.status_code == 200
    assert b'id="audience-count">2<' in page.content
    body = preview.content.decode()
    assert 'id="audience-count">1<' in body
    assert "Hello Aardvark" in body and "Dear Ann Aardvark, MD" in body
    assert "<html" not in body  # just the region


def test_sending_queues_the_issue_after_commit_and_shows_its_progress(
    client_for, manager, django_capture_on_commit_callbacks
):
    ProviderFactory(tier="A", email="a@example.org")
    ProviderFactory(tier="C", email="c@example.org")
    client = client_for(manager)
    with (
        mock.patch("outreach.tasks.send_newsletter.apply_async") as publish,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(
            reverse("outreach:newsletter_create"),
            {
                "subject": "Spring news",
                "body": "Dear {{ provider_name }}",
                "tiers": ["A"],
                "confirm_count": 1,
                "confirm_audience": _audience_key(tiers=["A"]),
            },
        )

    issue = NewsletterIssue.objects.get()
    assert response.status_code == 302 and response["Location"] == issue.get_absolute_url()
    assert publish.call_args.kwargs["args"] == (issue.pk,)
    assert (issue.tiers, issue.audience_size, issue.state) == (["A"], 1, "queued")

    page = client.get(issue.get_absolute_url())
    assert b'hx-trigger="every 1s"' in page.content
    # Polling is no activity: idle logoff does not count it (core.middleware).
    assert b"X-Progress-Poll" in page.content
    newsletters.newsletter_prepare(issue_id=issue.pk)
    Letter.objects.filter(newsletter=issue).update(status=Letter.Status.SENT)
    done = client.get(issue.get_absolute_url(), HTTP_HX_REQUEST="true")
    assert b"Done" in done.content and b"every 1s" not in done.content
    assert b"Sent: <strong>1</strong>" in done.content


def _audience_key(**segment):
    form = NewsletterForm({"subject": "News", "body": "Hello", **segment})
    assert form.is_valid(), form.errors
    return form.audience_key()


def test_nothing_is_sent_until_the_sender_confirms_the_audience_it_reaches(client_for, manager):
    for _ in range(3):
        ProviderFactory(tier="A")
    client = client_for(manager)
    data = {"subject": "Spring news", "body": "Dear {{ provider_name }}", "tiers": ["A"]}

    review = client.post(reverse("outreach:newsletter_create"), data, follow=True)
    page = review.content.decode()
    assert "This newsletter goes to 3 active partners." in page
    assert 'name="confirm_count" value="3"' in page and ">Send to 3 partners<" in page
    key = re.search(r'name="confirm_audience" value="(\w+)"', page)[1]
    assert "Spring news" in page and not NewsletterIssue.objects.exists()

    # The audience grew meanwhile: confirmed for 3, it asks again for 4.
    ProviderFactory(tier="A")
    confirmed = {"confirm_audience": key}
    again = client.post(
        reverse("outreach:newsletter_create"), {**data, **confirmed, "confirm_count": 3}
    )
    assert again.status_code == 200 and not NewsletterIssue.objects.exists()
    assert ">Send to 4 partners<" in again.content.decode()

    with mock.patch("outreach.tasks.send_newsletter.apply_async"):
        sent = client.post(
            reverse("outreach:newsletter_create"), {**data, **confirmed, "confirm_count": 4}
        )
    assert sent.status_code == 302 and NewsletterIssue.objects.get().audience_size == 4


def test_another_audience_of_the_same_size_is_confirmed_again(client_for, manager):
    ProviderFactory(tier="A")
    ProviderFactory(tier="C")
    client = client_for(manager)
    data = {"subject": "Spring news", "body": "Dear {{ provider_name }}", "tiers": ["A"]}
    page = client.post(reverse("outreach:newsletter_create"), data).content.decode()
    key = re.search(r'name="confirm_audience" value="(\w+)"', page)[1]
    # The sender switched to tier C before pressing Send: one partner too, but others.
    switched = {**data, "tiers": ["C"], "confirm_count": 1, "confirm_audience": key}
    again = client.post(reverse("outreach:newsletter_create"), switched)
    assert again.status_code == 200 and not NewsletterIssue.objects.exists()
    assert "This newsletter goes to 1 active partner." in again.content.decode()


def test_send_pressed_twice_sends_the_newsletter_once(client_for, manager):
    """A second press of Send (a double tap while the page loads, the form sent again from
    the browser's history) is the same newsletter: every partner gets it once."""
    ProviderFactory(tier="A", email="a@example.org")
    client = client_for(manager)
    data = {
        "subject": "Spring news",
        "body": "Dear {{ provider_name }}",
        "tiers": ["A"],
        "confirm_count": 1,
        "confirm_audience": _audience_key(tiers=["A"]),
    }

    with mock.patch("outreach.tasks.send_newsletter.apply_async"):
        first = client.post(reverse("outreach:newsletter_create"), data)
        second = client.post(reverse("outreach:newsletter_create"), data, follow=True)

    issue = NewsletterIssue.objects.get()
    assert first["Location"] == issue.get_absolute_url()
    assert second.redirect_chain[-1][0] == issue.get_absolute_url()
    assert "not sent again" in second.content.decode()


def test_a_newsletter_reaching_nobody_is_refused(client_for, manager):
    ProviderFactory(tier="A", specialty="Family Medicine")
    response = client_for(manager).post(
        reverse("outreach:newsletter_create"),
        {"subject": "News", "body": "Hello", "specialty": "zzz", "confirm_count": 0},
    )
    assert response.status_code == 200
    assert "No active partner is in this audience" in response.content.decode()
    assert not NewsletterIssue.objects.exists()


@pytest.mark.parametrize(("role", "status"), [("liaison", 403), ("coordinator", 403)])
def test_only_managers_reach_the_newsletter_pages(client_for, request, role, status):
    user = request.getfixturevalue(role)
    issue = _issue()
    client = client_for(user)
    for url in (
        reverse("outreach:newsletter_list"),
        reverse("outreach:newsletter_create"),
        issue.get_absolute_url(),
    ):
        assert client.get(url).status_code == status
    assert client.post(reverse("outreach:newsletter_preview"), {}).status_code == status


def test_the_list_pins_its_query_count(client_for, manager, django_assert_max_num_queries):
    client = client_for(manager)
    for _ in range(3):
        _issue(created_by=manager)
    client.get(reverse("outreach:newsletter_list"))
    with django_assert_max_num_queries(8) as few:
        client.get(reverse("outreach:newsletter_list"))
    for _ in range(20):
        _issue(created_by=manager)
    with django_assert_max_num_queries(len(few.captured_queries)):
        assert client.get(reverse("outreach:newsletter_list")).status_code == 200


def test_merging_two_records_that_both_got_an_issue_keeps_both_letters(manager):
    from partners.services.merges import partner_merge

    survivor = ProviderFactory(email="a@example.org")
    duplicate = ProviderFactory(email="b@example.org")
    issue = _issue()
    newsletters.newsletter_prepare(issue_id=issue.pk)

    partner_merge(survivor=survivor, duplicate=duplicate, actor=manager)

    assert Letter.objects.filter(provider=survivor, kind=K.NEWSLETTER).count() == 2
    assert issue.letters.get().provider == survivor


def test_the_newsletter_template_refuses_patient_merge_fields(client_for, manager):
    from outreach.services.letters import letter_template_for

    template = letter_template_for(K.NEWSLETTER)
    response = client_for(manager).post(
        reverse("outreach:template_update", args=[template.pk]),
        {"subject": "News", "body": "About {{ patient_initials }}", "delay_business_days": 0},
    )
    assert response.status_code == 200
    assert "carries no patient data" in response.content.decode()
    template.refresh_from_db()
    assert "patient_initials" not in template.body


def test_the_progress_costs_the_same_queries_however_many_letters(
    client_for, manager, django_assert_max_num_queries
):
    client = client_for(manager)
    ProviderFactory(email="x@example.org")
    small = _issue()
    newsletters.newsletter_prepare(issue_id=small.pk)
    client.get(small.get_absolute_url(), HTTP_HX_REQUEST="true")
    with django_assert_max_num_queries(10) as few:
        client.get(small.get_absolute_url(), HTTP_HX_REQUEST="true")
    for _ in range(20):
        ProviderFactory(email="x@example.org")
    large = _issue()
    newsletters.newsletter_prepare(issue_id=large.pk)
    with django_assert_max_num_queries(len(few.captured_queries)):
        response = client.get(large.get_absolute_url(), HTTP_HX_REQUEST="true")
    assert b"of 21" in response.content


def test_merge_fields_of_other_letters_are_refused_in_a_newsletter():
    from django.core.exceptions import ValidationError

    newsletters.check_newsletter_text("Dear {{ provider_name }} of {{ organization_name }}")
    with pytest.raises(ValidationError, match="Not available in a newsletter: event_name"):
        newsletters.check_newsletter_text("See you at {{ event_name }}")


def test_partners_whose_npi_was_deactivated_get_no_newsletter_and_the_sender_is_told(
    client_for, manager
):
    """A physician who retired or died stays "active" until someone notices; the NPPES
    registry, once loaded, already knows. No newsletter goes to them, and the sender sees
    how many were left out and why, to set them dormant."""
    from registry.factories import RegistryProviderFactory

    practising = ProviderFactory(email="a@example.org")
    gone = ProviderFactory(email="b@example.org")
    RegistryProviderFactory(npi=gone.npi, deactivated=True)
    RegistryProviderFactory(npi=practising.npi, deactivated=False)

    assert list(newsletters.audience()) == [practising]
    issue = _issue()
    newsletters.newsletter_prepare(issue_id=issue.pk)
    assert [letter.provider_id for letter in issue.letters.all()] == [practising.pk]

    page = client_for(manager).get(reverse("outreach:newsletter_create")).content.decode()
    assert 'id="audience-count">1<' in page
    assert "1 active partner the NPPES registry lists as deactivated" in page


def test_template_syntax_other_than_plain_merge_fields_is_refused_not_sent_as_braces(
    client_for, manager
):
    """Only plain merge fields are filled in: a filter or a tag would reach every partner
    as raw braces, so the form refuses it, as the template editor does."""
    ProviderFactory(email="whitfield@example.org")
    for body in (
        "Dear {{ provider_name|upper }},",
        "{% if provider_name %}Dear doctor{% endif %}",
        "Dear {{ provider name }},",
    ):
        response = client_for(manager).post(
            reverse("outreach:newsletter_create"), {"subject": "News", "body": body}
        )
        assert response.status_code == 200
        assert response.context["form"].errors["body"] == [
            "Only plain merge fields such as {{ provider_name }} are filled in; remove the "
            "other braces (no filters, no {% %} tags)."
        ], body
    assert not NewsletterIssue.objects.exists()


def test_a_send_that_keeps_failing_stops_after_its_tries_and_says_so(client_for, manager):
    """A send whose worker fails every time (a bug, a full disk) was re-driven every two
    minutes for ever, showing "Preparing" to the manager: it stops after its tries, and
    the page says so and stops polling."""
    issue = _issue(created_by=manager)

    def stale():
        NewsletterIssue.objects.filter(pk=issue.pk).update(
            state="preparing", heartbeat_at=timezone.now() - timedelta(minutes=5)
        )

    for _ in range(newsletters.MAX_REDRIVES):
        stale()
        assert newsletters.newsletters_to_redrive() == [issue.pk]
    stale()
    assert newsletters.newsletters_to_redrive() == []

    issue.refresh_from_db()
    assert issue.state == NewsletterIssue.State.FAILED
    page = client_for(manager).get(issue.get_absolute_url()).content.decode()
    assert "could not be prepared" in page
    assert 'hx-trigger="every 1s"' not in page
