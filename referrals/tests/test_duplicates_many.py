"""A referral kept for many copies, or with many possible duplicates: its page lists the
first few of each and links to all of them in the work queue, in the same queries."""

from __future__ import annotations

import re
from datetime import date

import pytest
from django.urls import reverse

from partners.factories import ProviderFactory
from referrals.factories import ReferralFactory
from referrals.models import Referral
from referrals.selectors import ALIKE_LISTED
from referrals.services.duplicates import referral_mark_duplicate
from referrals.services.workflow import referral_log

pytestmark = pytest.mark.django_db

DOB = date(1950, 4, 2)


def _logged(**kwargs) -> Referral:
    kwargs.setdefault("patient_last_name", "Olsen")
    kwargs.setdefault("patient_dob", DOB)
    return referral_log(referral=ReferralFactory.build(**kwargs), actor=None)


def _kept_with(copies: int, others: int) -> tuple[Referral, list[Referral], list[Referral]]:
    """A referral, `copies` marked as its duplicates and `others` of the same patient and
    partner not marked (possible duplicates)."""
    provider = ProviderFactory()
    kept = _logged(provider=provider)
    marked = []
    for _ in range(copies):
        copy = _logged(provider=provider)
        marked.append(referral_mark_duplicate(referral=copy, original=kept, actor=None))
    alike = [_logged(provider=provider) for _ in range(others)]
    return kept, marked, alike


def _queue_rows(page: str) -> set[int]:
    return {int(pk) for pk in re.findall(r'data-queue-row="(\d+)"', page)}


def _listed(page: str, testid: str) -> list[int]:
    """The referral numbers linked in the page's region `testid`."""
    region = re.search(rf'data-testid="{testid}".*?</(?:p|div)>', page, re.S)
    return [int(pk) for pk in re.findall(r">#(\d+)</a>", region[0])] if region else []


def test_a_referral_kept_for_more_copies_than_its_page_lists_links_to_all_of_them(
    client_for, coordinator
):
    kept, copies, _ = _kept_with(copies=ALIKE_LISTED + 2, others=0)
    client = client_for(coordinator)

    page = client.get(kept.get_absolute_url()).content.decode()

    # The newest first.
    assert _listed(page, "copies") == [copy.pk for copy in copies[::-1][:ALIKE_LISTED]]
    more = re.search(r'<a href="([^"]+)" data-testid="copies-more">and 2 more</a>', page)
    assert more, "no link to the copies not listed"
    queue = client.get(more[1].replace("&amp;", "&")).content.decode()
    assert _queue_rows(queue) == {kept.pk, *(copy.pk for copy in copies)}
    assert 'data-testid="alike-of"' in queue


def test_possible_duplicates_past_those_listed_are_reachable_from_the_page(client_for, coordinator):
    kept, _, alike = _kept_with(copies=0, others=ALIKE_LISTED + 3)
    client = client_for(coordinator)

    page = client.get(kept.get_absolute_url()).content.decode()

    assert _listed(page, "possible-duplicates") == [
        other.pk for other in alike[::-1][:ALIKE_LISTED]
    ]
    more = re.search(r'data-testid="alike-more"><a href="([^"]+)">and 3 more of the same', page)
    assert more, "no link to the possible duplicates not listed"
    queue = client.get(more[1]).content.decode()
    assert _queue_rows(queue) == {kept.pk, *(other.pk for other in alike)}


def test_copies_are_listed_however_many_possible_duplicates_there_are(client_for, coordinator):
    # Listed together, ten possible duplicates used to push the copies off the page: the
    # one kept then looked like one that could be marked as a copy itself.
    kept, copies, _ = _kept_with(copies=1, others=ALIKE_LISTED + 1)
    # The copy is the newest of all: it would come last.
    late = _logged(provider=kept.provider)
    referral_mark_duplicate(referral=late, original=kept, actor=None)

    page = client_for(coordinator).get(kept.get_absolute_url()).content.decode()

    assert _listed(page, "copies") == [late.pk, copies[0].pk]
    assert 'data-testid="copies-more"' not in page
    assert "and 1 more of the same patient" in page
    assert "This is a copy of" not in page


def test_the_page_of_a_referral_with_few_or_many_copies_runs_the_same_queries(
    client_for, coordinator, django_assert_num_queries
):
    kept, _, _ = _kept_with(copies=1, others=1)
    client = client_for(coordinator)
    client.get(kept.get_absolute_url())
    with django_assert_num_queries(12) as few:
        client.get(kept.get_absolute_url())
    provider = kept.provider
    for _ in range(ALIKE_LISTED + 4):
        copy = _logged(provider=provider)
        referral_mark_duplicate(referral=copy, original=kept, actor=None)
        _logged(provider=provider)
    with django_assert_num_queries(len(few.captured_queries)):
        page = client.get(kept.get_absolute_url()).content.decode()
    assert "and 5 more</a>" in page
    assert "and 5 more of the same patient" in page


def test_the_queue_matches_patients_only_for_roles_that_see_them(client_for, liaison):
    kept, _, _ = _kept_with(copies=0, others=2)
    kept.provider.owner = liaison
    kept.provider.save()

    page = client_for(liaison).get(reverse("referrals:list"), {"alike": kept.pk})

    text = page.content.decode()
    assert page.status_code == 200
    assert "cannot match them" in text
    assert 'data-testid="alike-of"' not in text


@pytest.mark.parametrize("asked", ["999999999", "0", "x", "1" * 30])
def test_an_unknown_or_malformed_referral_to_match_is_said_not_a_500(
    client_for, coordinator, asked
):
    page = client_for(coordinator).get(reverse("referrals:list"), {"alike": asked})

    assert page.status_code == 200
    assert 'data-testid="filter-errors"' in page.content.decode()
    assert 'data-testid="alike-of"' not in page.content.decode()


def test_the_export_of_the_queue_matched_to_a_referral_holds_only_those_rows(client_for, manager):
    kept, copies, alike = _kept_with(copies=1, others=1)
    _logged(provider=kept.provider, patient_last_name="Someone Else")
    response = client_for(manager).get(reverse("referrals:export"), {"alike": kept.pk})
    lines = b"".join(response.streaming_content).decode().splitlines()[1:]
    assert {int(line.split(",")[0]) for line in lines} == {kept.pk, copies[0].pk, alike[0].pk}


def test_an_export_matched_to_a_referral_it_cannot_find_exports_nothing(client_for, manager):
    _logged(provider=ProviderFactory())
    response = client_for(manager).get(reverse("referrals:export"), {"alike": "999999999"})
    assert response.status_code == 302
    assert not hasattr(response, "streaming_content")
