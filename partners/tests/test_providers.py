import re
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from core.factories import UserFactory
from core.roles import Role
from core.templatetags.people import person
from outreach.factories import ActivityFactory, TaskFactory
from outreach.models import Activity
from partners.factories import OrganizationFactory, ProviderFactory, StaffMemberFactory
from partners.models import Organization, Provider, TierChange
from partners.selectors import can_change_provider
from partners.services.health import providers_assess_health
from partners.services.merges import partner_merge
from partners.services.tiers import provider_set_tier, provider_unpin_tier
from referrals.factories import ReferralFactory

pytestmark = pytest.mark.django_db


def _provider_data(**overrides):
    data = {
        "npi": "1679576722",
        "first_name": "David",
        "last_name": "Wiebe",
        "credential": "MD",
        "taxonomy_code": "207X00000X",
        "specialty": "Orthopaedic Surgery",
        "status": "prospect",
    }
    return {**data, **overrides}


def test_a_coordinator_adds_a_partner(client_for, coordinator):
    response = client_for(coordinator).post(reverse("partners:provider_create"), _provider_data())
    provider = Provider.objects.get(npi="1679576722")
    assert response.status_code == 302
    assert response.url == provider.get_absolute_url()
    assert provider.display_name == "David Wiebe, MD"


def test_a_partner_phone_must_be_a_number_the_office_can_be_called_on(client_for, coordinator):
    response = client_for(coordinator).post(
        reverse("partners:provider_create"), _provider_data(phone="12")
    )
    assert response.status_code == 200
    assert not Provider.objects.exists()


def test_saving_a_partner_keeps_an_owner_no_longer_on_the_owner_list(client_for, manager):
    """Someone whose role changed since they were made owner stays on offer, so editing the
    notes does not silently leave the partner with nobody."""
    coordinator_owner = UserFactory(role=Role.COORDINATOR, first_name="Dana")
    provider = ProviderFactory(owner=coordinator_owner, phone="")
    page = client_for(manager).get(reverse("partners:provider_update", args=[provider.pk]))
    assert f'<option value="{coordinator_owner.pk}" selected>' in page.content.decode()


def test_a_partner_name_pasted_with_a_direction_override_is_stored_drawable(
    client_for, coordinator
):
    client_for(coordinator).post(
        reverse("partners:provider_create"), _provider_data(last_name="\u202eebeiW\u2069")
    )
    assert Provider.objects.get(npi="1679576722").last_name == "ebeiW"


@pytest.mark.parametrize(
    ("npi", "message"),
    [("1679576723", "check digit is wrong"), ("16795767", "exactly 10 digits")],
)
def test_a_bad_npi_re_renders_the_form_with_the_reason_and_keeps_the_input(
    client_for, coordinator, npi, message
):
    response = client_for(coordinator).post(
        reverse("partners:provider_create"), _provider_data(npi=npi)
    )
    assert response.status_code == 200
    assert message in response.content.decode()
    assert 'value="Wiebe"' in response.content.decode()
    assert not Provider.objects.exists()


def test_an_npi_pasted_with_spaces_around_it_reaches_the_server_whole(client_for, coordinator):
    # A box that stops at 10 characters keeps " 167957672" of a pasted " 1679576722":
    # the browser must send all of it, for the server to trim.
    url = reverse("partners:provider_create")
    assert "maxlength" not in str(client_for(coordinator).get(url).context["form"]["npi"])
    client_for(coordinator).post(url, _provider_data(npi=" 1679576722 "))
    assert Provider.objects.get().npi == "1679576722"


def test_a_duplicate_npi_is_refused_clearly(client_for, coordinator):
    ProviderFactory(npi="1679576722")
    response = client_for(coordinator).post(reverse("partners:provider_create"), _provider_data())
    assert "already exists" in response.content.decode()


def test_the_partner_page_is_open_to_every_role_but_not_to_a_user_without_one(
    client_for, liaison, other_liaison, coordinator, no_role_user
):
    provider = ProviderFactory(owner=liaison)
    url = provider.get_absolute_url()
    assert client_for(liaison).get(url).status_code == 200  # owner
    assert client_for(other_liaison).get(url).status_code == 200  # colleague
    assert client_for(coordinator).get(url).status_code == 200
    assert client_for(no_role_user).get(url).status_code == 404  # stranger


def test_a_new_owner_takes_over_the_partners_open_rekindle_meeting_and_thank_you_tasks(
    client_for, manager, liaison, other_liaison
):
    provider = ProviderFactory(owner=liaison, npi="1679576722")
    rekindle = TaskFactory(provider=provider, assignee=liaison, kind="rekindle")
    meeting = TaskFactory(provider=provider, assignee=liaison, kind="annual_meeting")
    # The personal call a referral's thank-you gives the relationship owner.
    thank_you = TaskFactory(provider=provider, assignee=liaison, kind="thank_you")
    own_follow_up = TaskFactory(provider=provider, assignee=liaison, kind="follow_up")
    done = TaskFactory(provider=provider, assignee=liaison, kind="rekindle", status="done")

    client_for(manager).post(
        reverse("partners:provider_update", args=[provider.pk]),
        _provider_data(owner=other_liaison.pk),
    )

    provider.refresh_from_db()
    assert provider.owner == other_liaison
    for task in (rekindle, meeting, thank_you, own_follow_up, done):
        task.refresh_from_db()
    # The nightly jobs give a partner one open task of these kinds, for its owner: it
    # goes to whoever looks after the partner now, not to the one who no longer may.
    assert rekindle.assignee == meeting.assignee == thank_you.assignee == other_liaison
    assert own_follow_up.assignee == done.assignee == liaison


def test_only_the_owner_liaison_may_edit_a_partner(client_for, liaison, other_liaison, manager):
    provider = ProviderFactory(owner=liaison)
    url = reverse("partners:provider_update", args=[provider.pk])
    assert client_for(liaison).get(url).status_code == 200
    refused = client_for(other_liaison).get(url)
    # Every role reads the whole network, so the refusal says whose partner it is.
    assert refused.status_code == 403
    assert refused.context["exception"] == (
        f"{provider.display_name} is {person(liaison)}'s partner: only they or a manager "
        "can change it."
    )
    assert client_for(manager).get(url).status_code == 200


def _shown_version(page: str) -> str:
    """The hidden version the edit page sends back, or nothing if it has none."""
    found = re.search(r'name="version" value="([^"]*)"', page)
    return found.group(1) if found else ""


def test_a_partner_form_opened_before_a_colleagues_change_does_not_undo_it(
    client_for, coordinator, manager, liaison, other_liaison
):
    """A coordinator opens the partner to fix the phone; meanwhile the manager hands the
    relationship to another liaison and notes that the partner asked for no more letters.
    The coordinator's save must not put the old owner and the letters back without a word:
    nothing is saved, the form says why and keeps what they typed."""
    provider = ProviderFactory(owner=liaison, phone="(402) 555-0100", letters_opt_out=False)
    url = reverse("partners:provider_update", args=[provider.pk])
    opened = client_for(coordinator).get(url).content.decode()
    as_opened = _provider_data(
        npi=provider.npi,
        first_name=provider.first_name,
        last_name=provider.last_name,
        taxonomy_code="",
        status=provider.status,
        phone=provider.phone,
        owner=liaison.pk,
        version=_shown_version(opened),
    )
    client_for(manager).post(
        url, {**as_opened, "owner": other_liaison.pk, "letters_opt_out": "on", "version": ""}
    )

    response = client_for(coordinator).post(url, {**as_opened, "phone": "(402) 555-0199"})

    provider.refresh_from_db()
    assert provider.owner == other_liaison and provider.letters_opt_out
    assert provider.phone == "(402) 555-0100"
    page = response.content.decode()
    assert response.status_code == 200
    assert "Someone changed this partner after you opened it" in page
    assert 'value="(402) 555-0199"' in page


def test_a_manager_changes_a_tier_with_a_reason_and_it_is_kept_as_history(client_for, manager):
    provider = ProviderFactory(tier="B")
    response = client_for(manager).post(
        reverse("partners:provider_tier", args=[provider.pk]),
        {"tier": "A", "reason": "Doubled referrals this quarter"},
    )
    assert response.status_code == 302
    provider.refresh_from_db()
    assert provider.tier == "A"
    change = TierChange.objects.get(provider=provider)
    assert (change.from_tier, change.to_tier, change.changed_by) == ("B", "A", manager)


def test_a_coordinator_cannot_change_tiers(client_for, coordinator):
    provider = ProviderFactory(tier="B")
    response = client_for(coordinator).post(
        reverse("partners:provider_tier", args=[provider.pk]), {"tier": "A", "reason": "x"}
    )
    assert response.status_code == 403
    provider.refresh_from_db()
    assert provider.tier == "B"
    assert not TierChange.objects.exists()


def test_the_partner_list_searches_by_name_npi_and_office(client_for, coordinator):
    office = OrganizationFactory(name="Kearney Family Practice")
    ProviderFactory(last_name="Wiebe", npi="1679576722", organization=office)
    ProviderFactory(last_name="Pilcher")
    client = client_for(coordinator)
    for text in ("wieb", "1679576", "kearney"):
        page = client.get(reverse("partners:provider_list"), {"q": text}).content.decode()
        assert "Wiebe" in page
        assert "Pilcher" not in page


def test_the_partner_list_sorts_by_referrals_latest_and_quiet_longest(client_for, manager):
    now = timezone.now()
    busy, steady, lapsed, _never = (
        ProviderFactory(last_name=name) for name in ("Quorvath", "Quelling", "Quandry", "Quibble")
    )
    for days in (3, 40, 90):
        ReferralFactory(provider=busy, received_at=now - timedelta(days=days))
    ReferralFactory(provider=steady, received_at=now - timedelta(days=1))
    ReferralFactory(provider=lapsed, received_at=now - timedelta(days=400))
    client = client_for(manager)

    def order(sort):
        page = client.get(reverse("partners:provider_list"), {"sort": sort}).content.decode()
        names = ("Quorvath", "Quelling", "Quandry", "Quibble")
        return sorted(names, key=page.index)

    assert order("") == ["Quandry", "Quelling", "Quibble", "Quorvath"]
    assert order("most") == ["Quorvath", "Quelling", "Quandry", "Quibble"]
    assert order("latest") == ["Quelling", "Quorvath", "Quandry", "Quibble"]
    assert order("quiet") == ["Quandry", "Quorvath", "Quelling", "Quibble"]
    refused = client.get(reverse("partners:provider_list"), {"sort": "pk; drop table"})
    assert refused.status_code == 200
    assert "These filters were left out" in refused.content.decode()
    assert "Sort: Select a valid choice." in refused.content.decode()


def _listed(client, url, pages, pattern):
    found = []
    for page in range(1, pages + 1):
        found += [int(pk) for pk in re.findall(pattern, client.get(url, {"page": page}).text)]
    return found


def test_partners_of_the_same_name_are_each_on_exactly_one_page_of_the_list(client_for, manager):
    """Namesakes are common in a network of thousands (two Dr. John Smiths, a partner
    entered twice before a merge): paging through the list shows each once, none twice
    and none never."""
    office = OrganizationFactory()
    partners = ProviderFactory.create_batch(
        120, first_name="Ann", last_name="Lee", credential="MD", organization=office
    )
    # Some edited since, as rows are in a real table.
    for partner in partners[::3]:
        Provider.objects.filter(pk=partner.pk).update(notes="Prefers fax")

    listed = _listed(
        client_for(manager), reverse("partners:provider_list"), 5, r'href="/partners/(\d+)/"'
    )

    assert sorted(listed) == sorted(partner.pk for partner in partners)


def test_offices_of_the_same_name_are_each_on_exactly_one_page_of_the_list(client_for, manager):
    """A group's locations often share one name (the import keeps them apart by ZIP):
    paging through the office list shows each location once."""
    offices = OrganizationFactory.create_batch(120, name="Kearney Family Practice")
    for office in offices[::3]:
        Organization.objects.filter(pk=office.pk).update(notes="Side entrance")

    listed = _listed(
        client_for(manager),
        reverse("partners:organization_list"),
        5,
        r'href="/partners/offices/(\d+)/"',
    )

    assert sorted(listed) == sorted(office.pk for office in offices)


def test_the_partner_export_keeps_the_order_chosen_on_screen(client_for, manager):
    now = timezone.now()
    ProviderFactory(last_name="Quandry")
    ReferralFactory(
        provider=ProviderFactory(last_name="Quorvath"), received_at=now - timedelta(days=2)
    )
    response = client_for(manager).get(reverse("partners:provider_export"), {"sort": "most"})
    text = b"".join(response.streaming_content).decode("utf-8-sig")
    assert text.index("Quorvath") < text.index("Quandry")


def test_the_partner_list_runs_the_same_queries_for_5_and_40_partners(
    client_for, coordinator, django_assert_num_queries
):
    client = client_for(coordinator)
    url = reverse("partners:provider_list")

    def fill(count):
        for provider in ProviderFactory.create_batch(count):
            ReferralFactory(provider=provider)

    fill(5)
    client.get(url)  # warm the session and permission caches
    with django_assert_num_queries(6) as small:
        client.get(url)
    fill(35)
    with django_assert_num_queries(len(small.captured_queries)):
        client.get(url)


def test_the_partner_detail_runs_the_same_queries_however_long_its_history(
    client_for, manager, django_assert_num_queries
):
    client = client_for(manager)
    provider = ProviderFactory()
    StaffMemberFactory(organization=provider.organization)
    ReferralFactory(provider=provider)
    url = provider.get_absolute_url()
    client.get(url)
    # 17: session, user, role and permissions; the partner; its referral figures (one
    # aggregate), monthly volume and referrals on the timeline; activities, letters, its
    # open and latest tasks (one query), tier/health changes and merges; skipped visits to
    # the office, the annual meeting and the staff; and the audit rows for the patient
    # names the timeline shows (one INSERT).
    with django_assert_num_queries(17) as few:
        client.get(url)
    ReferralFactory.create_batch(20, provider=provider)
    ReferralFactory.create_batch(5, provider=provider, direction="outbound")
    StaffMemberFactory.create_batch(5, organization=provider.organization)
    for _ in range(3):
        ActivityFactory(next_step="Bring the new brochure").providers.add(provider)
        TaskFactory(provider=provider, assignee=manager)
        provider_set_tier(provider=provider, tier="A", reason="Top referrer", actor=manager)
        provider_unpin_tier(provider=provider, actor=manager)
        partner_merge(survivor=provider, duplicate=ProviderFactory(), actor=manager)
    providers_assess_health(as_of=timezone.localdate())
    with django_assert_num_queries(len(few.captured_queries)):
        client.get(url)


def test_typeahead_finds_partners_by_name(client_for, coordinator):
    ProviderFactory(first_name="David", last_name="Wiebe")
    response = client_for(coordinator).get(
        reverse("partners:provider_typeahead"), {"provider_search": "wiebe"}
    )
    assert "David Wiebe" in response.content.decode()


def test_a_partner_is_found_by_the_name_as_it_is_shown_with_its_credential(db):
    wiebe = ProviderFactory(first_name="Ann", last_name="Wiebe", credential="MD")
    ProviderFactory(first_name="Ann", last_name="Wiebe", credential="NP")
    assert list(Provider.objects.search("Ann Wiebe, MD")) == [wiebe]
    assert list(Provider.objects.search("wiebe md")) == [wiebe]


def test_the_provider_named_comes_before_colleagues_found_by_their_office(client_for, coordinator):
    """Typing "Ross" finds Robert Ross, and the in-network doctors of the Crosshaven office
    too: he comes first, or ten colleagues could push him off the list."""
    office = OrganizationFactory(name="Crosshaven Family Medicine")
    for n in range(10):
        ProviderFactory(last_name=f"Aaron{n}", organization=office, in_network=True)
    ProviderFactory(first_name="Robert", last_name="Ross", in_network=False)
    response = client_for(coordinator).get(
        reverse("partners:provider_typeahead"), {"provider_search": "ross"}
    )
    page = response.content.decode()
    assert "Robert Ross" in page
    assert page.index("Robert Ross") < page.index("Aaron")


def test_staff_are_added_to_an_office(client_for, liaison):
    office = OrganizationFactory()
    response = client_for(liaison).post(
        reverse("partners:staff_create", args=[office.pk]),
        {"first_name": "Pat", "last_name": "Reyes", "role": "office_manager"},
    )
    assert response.status_code == 302
    assert office.staff.get().display_name == "Pat Reyes"


def test_a_staff_phone_is_written_as_the_office_form_writes_it_or_refused(client_for, liaison):
    office = OrganizationFactory()
    url = reverse("partners:staff_create", args=[office.pk])
    staff = {"first_name": "Pat", "last_name": "Reyes", "role": "office_manager"}
    response = client_for(liaison).post(url, {**staff, "phone": "call me maybe"})
    assert response.status_code == 200
    assert "Not a US phone number" in response.content.decode()
    assert not office.staff.exists()
    client_for(liaison).post(url, {**staff, "phone": "402.555.0100 ext 12"})
    assert office.staff.get().phone == "(402) 555-0100 x12"


def test_a_staff_form_opened_before_a_colleagues_change_does_not_undo_it(
    client_for, liaison, manager
):
    """A liaison opens the office manager's card to add her birthday; meanwhile a colleague
    corrects her phone. The liaison's save must not put the old phone back without a word."""
    staff = StaffMemberFactory(first_name="Pat", last_name="Reyes", phone="(402) 555-0100")
    url = reverse("partners:staff_update", args=[staff.pk])
    opened = client_for(liaison).get(url).content.decode()
    as_opened = {
        "first_name": "Pat",
        "last_name": "Reyes",
        "role": staff.role,
        "phone": "(402) 555-0100",
        "version": _shown_version(opened),
    }
    assert as_opened["version"], "the form carries the version it was opened at"
    colleague = client_for(manager).post(url, {**as_opened, "phone": "(402) 555-0177"})
    assert colleague.status_code == 302

    response = client_for(liaison).post(url, {**as_opened, "birthday": "1980-04-02"})

    staff.refresh_from_db()
    assert staff.phone == "(402) 555-0177" and staff.birthday is None
    page = response.content.decode()
    assert response.status_code == 200
    assert "Someone changed this staff member after you opened it" in page
    assert 'value="1980-04-02"' in page
    # Sent again, it is measured against the row as it is now, and saved.
    again = client_for(liaison).post(
        url,
        {
            **as_opened,
            "phone": "(402) 555-0177",
            "birthday": "1980-04-02",
            "version": _shown_version(page),
        },
    )
    assert again.status_code == 302
    staff.refresh_from_db()
    assert (staff.phone, str(staff.birthday)) == ("(402) 555-0177", "1980-04-02")


def test_a_search_with_a_nul_byte_finds_by_the_rest_of_the_text(db):
    from partners.factories import ProviderFactory as Factory
    from partners.models import Provider as Model

    wiebe = Factory(last_name="Wiebe")
    assert list(Model.objects.search("Wie\x00be")) == [wiebe]


def test_the_typeahead_ignores_a_nul_byte_instead_of_failing(client_for, coordinator):
    from django.urls import reverse

    from partners.factories import ProviderFactory

    ProviderFactory(last_name="Wiebe")
    response = client_for(coordinator).get(
        reverse("partners:provider_typeahead"), {"q": "Wie\x00be"}
    )
    assert response.status_code == 200
    assert "Wiebe" in response.content.decode()


def test_typeahead_survives_a_nul_character_in_the_query(client_for, coordinator):
    ProviderFactory(first_name="David", last_name="Wiebe")
    response = client_for(coordinator).get(
        reverse("partners:provider_typeahead"), {"q": "wie\x00be"}
    )
    assert response.status_code == 200


def test_the_partner_page_links_a_manager_to_its_reciprocity_over_time(client_for, manager):
    provider = ProviderFactory()
    page = client_for(manager).get(provider.get_absolute_url()).content.decode()
    link = f"{reverse('referrals:reciprocity')}?provider={provider.pk}#flow-heading"
    assert link in page
    chart = client_for(manager).get(link.split("#")[0])
    assert chart.status_code == 200


@pytest.mark.parametrize(
    "role", ["manager", "liaison", "other_liaison", "coordinator", "administrator", "no_role_user"]
)
def test_the_edit_button_follows_the_same_rule_as_the_edit_page(client_for, request, role, liaison):
    user = request.getfixturevalue(role)
    edit_link = 'href="{}"'
    for owner in (liaison, None):
        provider = ProviderFactory(owner=owner)
        may_change = Provider.objects.for_user(user, write=True).filter(pk=provider.pk).exists()
        assert can_change_provider(user, provider) is may_change
        page = client_for(user).get(provider.get_absolute_url())
        if page.status_code == 404:
            assert not may_change
            continue
        update = reverse("partners:provider_update", args=[provider.pk])
        assert (edit_link.format(update) in page.content.decode()) is may_change
        assert (client_for(user).get(update).status_code == 200) is may_change


def test_a_partners_referral_figures_count_each_way_ever_and_over_the_period():
    provider = ProviderFactory()
    now = timezone.now()
    for days_ago, direction in [
        (10, "inbound"),
        (20, "inbound"),
        (400, "inbound"),
        (5, "outbound"),
    ]:
        ReferralFactory(
            provider=provider, direction=direction, received_at=now - timedelta(days=days_ago)
        )
    ReferralFactory(direction="inbound")  # another partner's
    figures = provider.referral_figures(since=now - timedelta(days=365))
    assert (figures.inbound, figures.outbound) == (3, 1)
    assert (figures.received, figures.sent, figures.balance) == (2, 1, -1)
    assert figures.last_inbound_at == now - timedelta(days=10)
    quiet = ProviderFactory().referral_figures(since=now - timedelta(days=365))
    assert (quiet.inbound, quiet.received, quiet.balance, quiet.last_inbound_at) == (0, 0, 0, None)


def test_the_partner_page_lists_every_open_task_and_the_latest_tasks_on_its_timeline(
    client_for, manager
):
    from outreach.models import Task

    provider = ProviderFactory()
    old_open = TaskFactory(provider=provider, assignee=manager, title="Old open task")
    Task.objects.filter(pk=old_open.pk).update(created_at=timezone.now() - timedelta(days=900))
    start = timezone.now() - timedelta(days=100)
    for n in range(35):
        done = TaskFactory(provider=provider, assignee=manager, title=f"Done {n}", status="done")
        Task.objects.filter(pk=done.pk).update(created_at=start + timedelta(days=n))
    page = client_for(manager).get(provider.get_absolute_url()).content.decode()
    open_list = page[page.index("Open tasks") : page.index('<ul class="timeline">')]
    timeline = page[page.index('<ul class="timeline">') :]
    # Every open task, however old, is listed; the timeline shows the latest thirty.
    assert "Old open task" in open_list and "Done" not in open_list
    shown = [n for n in range(35) if f": Done {n} · done" in timeline]
    assert shown == list(range(5, 35))
    assert "Old open task" not in timeline


def test_the_partner_page_names_the_status_people_set_apart_from_the_computed_health(
    client_for, manager
):
    provider = ProviderFactory(
        status=Provider.Status.DORMANT,
        health=Provider.Health.ACTIVE,
        health_checked_at=timezone.now(),
    )
    page = client_for(manager).get(provider.get_absolute_url()).content.decode()
    assert ">Status: Dormant</span>" in page
    assert ">Health: Active</span>" in page


def test_a_touch_logged_since_the_nightly_health_check_is_mentioned_beside_it(client_for, manager):
    from partners.services.health import providers_assess_health

    provider = ProviderFactory(
        health=Provider.Health.AT_RISK, health_checked_at=timezone.now() - timedelta(days=30)
    )
    lunch = ActivityFactory(kind="lunch", occurred_at=timezone.now() - timedelta(hours=2))
    lunch.providers.add(provider)
    Provider.objects.update(health_assessed_at=timezone.now() - timedelta(hours=10))
    page = client_for(manager).get(provider.get_absolute_url()).content.decode()
    assert 'data-testid="touched-since">Since then: lunch on' in page

    # Once the nightly run has counted it, whether or not the status moved, it is no
    # longer news: the page does not promise that tonight's run will count it.
    providers_assess_health(as_of=timezone.localdate())
    page = client_for(manager).get(provider.get_absolute_url()).content.decode()
    assert "touched-since" not in page

    # A run that changes nothing still says it ran, without touching what API syncs read.
    before = Provider.objects.values_list("health_checked_at", "updated_at", "health_assessed_at")
    (checked, updated, assessed) = before.get()
    providers_assess_health(as_of=timezone.localdate())
    (checked_again, updated_again, assessed_again) = before.get()
    assert (checked_again, updated_again) == (checked, updated)
    assert assessed_again > assessed


def test_a_visit_logged_days_late_is_news_and_one_logged_before_the_run_is_not(client_for, manager):
    """What the nightly run has not counted is what was logged after it started, whatever
    day the visit was on (it said nothing of a visit logged late, and would have spoken
    of one dated ahead that the run had already read)."""
    provider = ProviderFactory(health_checked_at=timezone.now() - timedelta(days=30))
    Provider.objects.update(health_assessed_at=timezone.now() - timedelta(hours=10))
    late = ActivityFactory(kind="visit", occurred_at=timezone.now() - timedelta(days=3))
    late.providers.add(provider)
    page = client_for(manager).get(provider.get_absolute_url()).content.decode()
    assert 'data-testid="touched-since">Since then: visit on' in page

    Activity.objects.filter(pk=late.pk).update(created_at=timezone.now() - timedelta(hours=11))
    ahead = ActivityFactory(kind="lunch", occurred_at=timezone.now() + timedelta(hours=1))
    ahead.providers.add(provider)
    Activity.objects.filter(pk=ahead.pk).update(created_at=timezone.now() - timedelta(hours=12))
    page = client_for(manager).get(provider.get_absolute_url()).content.decode()
    assert "touched-since" not in page


def test_a_touch_logged_while_the_nightly_run_is_under_way_is_still_news(
    client_for, manager, monkeypatch
):
    # The run reads every partner's last touch, then writes what moved: a visit logged in
    # between is not counted tonight, so the page must go on saying the next run will.
    from partners.services import health

    provider = ProviderFactory()
    write = health._apply_health

    def a_visit_logged_meanwhile(assessed):
        ActivityFactory(kind="visit", occurred_at=timezone.now()).providers.add(provider)
        return write(assessed)

    monkeypatch.setattr(health, "_apply_health", a_visit_logged_meanwhile)
    health.providers_assess_health(as_of=timezone.localdate())
    provider.refresh_from_db()
    assert provider.health_reasons[-1]["code"] == "never_touched"  # the run missed it
    page = client_for(manager).get(provider.get_absolute_url()).content.decode()
    assert 'data-testid="touched-since">Since then: visit on' in page


def test_another_liaisons_partner_page_does_not_name_the_patients_of_its_letters(
    client_for, liaison, other_liaison
):
    from outreach.models import Letter

    provider = ProviderFactory(owner=liaison)
    referral = ReferralFactory(
        provider=provider, patient_first_name="Zelda", patient_last_name="Qorm"
    )
    Letter.objects.create(
        provider=provider,
        referral=referral,
        kind="thank_you",
        subject="Thank you for referring Z.Q.",
        body="…",
        due_on=timezone.localdate(),
    )
    own = client_for(liaison).get(provider.get_absolute_url()).content.decode()
    assert "Thank you for referring Z.Q." in own
    other = client_for(other_liaison).get(provider.get_absolute_url()).content.decode()
    assert "Thank-you letter" in other
    assert "Z.Q." not in other


def test_the_partner_page_says_where_letters_go_when_there_is_no_email(client_for, coordinator):
    office = OrganizationFactory(email="", fax="")
    provider = ProviderFactory(organization=office, email="", preferred_channel="email")
    page = client_for(coordinator).get(provider.get_absolute_url()).content.decode()
    assert "(no email on file: they go by mail)" in page
    provider.email = "front@kearneyfp.example"
    provider.save()
    page = client_for(coordinator).get(provider.get_absolute_url()).content.decode()
    assert "no email on file" not in page


def test_a_taxonomy_code_must_have_the_nucc_shape_and_be_on_the_list_once_loaded(
    client_for, coordinator
):
    from registry.models import Taxonomy

    url = reverse("partners:provider_create")
    client = client_for(coordinator)
    shape = client.post(url, _provider_data(taxonomy_code="ZZZZZZZZZZ")).content.decode()
    assert "A NUCC taxonomy code is 10 characters" in shape and 'value="Wiebe"' in shape
    Taxonomy.objects.get_or_create(
        code="207X00000X",
        defaults={"grouping": "Allopathic", "classification": "Orthopaedic Surgery"},
    )
    unknown = client.post(url, _provider_data(taxonomy_code="207Z99999X")).content.decode()
    assert "207Z99999X is not in the NUCC taxonomy list." in unknown
    assert not Provider.objects.exists()
    client.post(url, _provider_data(taxonomy_code=" 207x00000x "))
    assert Provider.objects.get().taxonomy_code == "207X00000X"


def test_an_organizations_npi_from_the_registry_is_not_a_clinicians(client_for, coordinator):
    from registry.factories import RegistryProviderFactory
    from registry.models import RegistryProvider

    RegistryProviderFactory(
        npi="1679576722",
        entity_type=RegistryProvider.EntityType.ORGANIZATION,
        organization_name="MAPLE FAMILY PRACTICE LLC",
    )
    page = client_for(coordinator).post(reverse("partners:provider_create"), _provider_data())
    said = page.content.decode()
    assert "is an organization&#x27;s in the NPPES registry (MAPLE FAMILY PRACTICE LLC)" in said
    assert not Provider.objects.exists()


def test_a_stored_code_since_retired_does_not_stop_other_edits(client_for, coordinator):
    """NUCC retires codes and the registry learns more NPIs: a partner saved before either
    still has its other details corrected; only a changed code or NPI is checked."""
    from registry.factories import RegistryProviderFactory
    from registry.models import RegistryProvider, Taxonomy

    provider = ProviderFactory(npi="1679576722", taxonomy_code="207Z99999X", phone="")
    Taxonomy.objects.get_or_create(
        code="207X00000X",
        defaults={"grouping": "Allopathic", "classification": "Orthopaedic Surgery"},
    )
    RegistryProviderFactory(
        npi="1679576722",
        entity_type=RegistryProvider.EntityType.ORGANIZATION,
        organization_name="MAPLE FAMILY PRACTICE LLC",
    )
    url = reverse("partners:provider_update", args=[provider.pk])
    client = client_for(coordinator)
    kept = _provider_data(taxonomy_code="207Z99999X", phone="(402) 555-0187")
    response = client.post(url, kept)
    assert response.status_code == 302, response.content.decode()
    provider.refresh_from_db()
    assert provider.phone and provider.taxonomy_code == "207Z99999X"
    changed = client.post(url, {**kept, "taxonomy_code": "207Z99998X"}).content.decode()
    assert "207Z99998X is not in the NUCC taxonomy list." in changed


def test_an_office_name_pasted_with_controls_is_stored_drawable_and_downloadable(
    client_for, manager
):
    from partners.models import Organization

    client_for(manager).post(
        reverse("partners:organization_create"),
        {"name": "\u202eKearney\x0b Clinic", "address_line1": "12\x07 Elm St"},
    )
    office = Organization.objects.get()
    assert (office.name, office.address_line1) == ("Kearney Clinic", "12 Elm St")


def test_the_partner_page_list_and_report_count_the_same_twelve_months(client_for, manager):
    """From the start of the day a year ago, as the reports count by default: the page
    counted from this moment a year ago, and left out that morning's referrals."""
    from core.dates import twelve_months_start
    from referrals.models import Referral

    provider = ProviderFactory()
    that_morning = twelve_months_start() + timedelta(seconds=1)
    ReferralFactory(provider=provider, direction="inbound", received_at=that_morning)
    ReferralFactory(provider=provider, direction="inbound", received_at=timezone.now())
    ReferralFactory(
        provider=provider, direction="inbound", received_at=that_morning - timedelta(seconds=2)
    )
    client = client_for(manager)
    page = client.get(provider.get_absolute_url()).content.decode()
    assert '<dt class="col-6">Last 12 months</dt><dd class="col-6">2</dd>' in page
    listed = Provider.objects.with_referral_stats().get(pk=provider.pk)
    assert listed.referrals_12m == 2
    report = client.get(reverse("referrals:reciprocity"), {"provider": provider.pk})
    assert report.context["totals"]["received"] == 2
    assert Referral.objects.count() == 3
