"""An office manager asks for "no more newsletters to any of our doctors": the office's opt-out
of newsletters and invitations covers every partner of the office, those who join later
included, as their own would (newsletters, rekindle notes, event reminders), while the
letters about their patients still go."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from outreach import newsletters, rekindle
from outreach.models import Letter, LetterTemplate, NewsletterIssue
from outreach.services.letters import letter_route
from partners.factories import OrganizationFactory, ProviderFactory
from partners.forms import OrganizationForm
from partners.models import Organization
from partners.services.merges import partner_merge

pytestmark = pytest.mark.django_db

S, K = Letter.Status, LetterTemplate.Kind


def _office_without_newsletters(**fields) -> Organization:
    return OrganizationFactory.create(marketing_opt_out=True, **fields)


def test_its_partners_get_no_newsletter_rekindle_note_or_reminder_but_their_patients_letters():
    office = _office_without_newsletters()
    provider = ProviderFactory(organization=office, email="dr@example.org")
    issue = NewsletterIssue.objects.create(subject="News", body="Dear {{ provider_name }}")

    newsletters.newsletter_prepare(issue_id=issue.pk)

    assert issue.letters.get(provider=provider).status == S.SKIPPED
    for kind in (K.NEWSLETTER, K.REKINDLE, K.EVENT_REMINDER):
        assert letter_route(provider, kind)[1] == S.SKIPPED
    assert letter_route(provider, K.THANK_YOU) == (
        Letter.Channel.EMAIL,
        S.PENDING,
        "dr@example.org",
    )
    route = rekindle.note_route(provider)
    assert route.opted_out and route.office_opted_out and route.marketing_opted_out


def test_the_office_form_sets_it_and_both_pages_say_so(client_for, manager):
    office = OrganizationFactory()
    provider = ProviderFactory(organization=office)
    client = client_for(manager)
    form = OrganizationForm(instance=office)
    data = {name: form[name].value() or "" for name in form.fields if name != "letters_opt_out"}
    data["marketing_opt_out"] = "on"

    response = client.post(reverse("partners:organization_update", args=[office.pk]), data)

    assert response.status_code == 302, response.content.decode()[:2000]
    office.refresh_from_db()
    assert office.marketing_opt_out and not office.letters_opt_out
    office_page = client.get(office.get_absolute_url()).content.decode()
    assert 'data-testid="office-marketing-opt-out"' in office_page
    partner_page = client.get(provider.get_absolute_url()).content.decode()
    assert "No newsletters or invitations (their office asked)" in partner_page
    changes = client.get(reverse("partners:organization_history", args=[office.pk]))
    assert "Office opted out of newsletters and invitations" in changes.content.decode()


def test_the_newsletter_preview_and_the_partner_list_count_them(client_for, manager):
    office = _office_without_newsletters()
    ProviderFactory(organization=office, last_name="Quillfeather", email="q@example.org")
    ProviderFactory(last_name="Zellweger", email="z@example.org")
    client = client_for(manager)

    preview = client.post(
        reverse("outreach:newsletter_preview"), {"subject": "News", "body": "Hello"}
    ).content.decode()
    listed = client.get(
        reverse("partners:provider_list"), {"letters": "no_newsletters"}
    ).content.decode()

    assert "1 of them opted out of letters or newsletters" in preview
    assert "Quillfeather" in listed and "Zellweger" not in listed


def test_a_merge_of_offices_keeps_it_from_either(manager):
    survivor, duplicate = OrganizationFactory(), _office_without_newsletters()
    partner_merge(survivor=survivor, duplicate=duplicate, actor=manager)
    survivor.refresh_from_db()
    assert survivor.marketing_opt_out


def test_the_export_says_it_for_each_partner_of_the_office(client_for, manager):
    office = _office_without_newsletters()
    ProviderFactory(organization=office)
    response = client_for(manager).get(reverse("partners:provider_export"))
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    record = dict(zip(rows[0], rows[1], strict=True))
    assert record["Office opted out of newsletters and invitations"] == "yes"
    assert record["Opted out of newsletters and invitations"] == "no"
