import pytest
from django.urls import reverse

from partners.factories import StaffMemberFactory

pytestmark = pytest.mark.django_db


def test_a_staff_members_phone_and_email_on_the_office_page_are_links_a_phone_can_tap(
    client_for, liaison
):
    # A liaison in the parking lot calls the office manager from this page, as they can
    # from the partner page; a number to copy by hand is a number not called.
    member = StaffMemberFactory(phone="(402) 555-0123", email="dana@office.example")
    url = reverse("partners:organization_detail", args=[member.organization.pk])

    page = client_for(liaison).get(url).content.decode()

    assert '<a href="tel:+14025550123">(402) 555-0123</a>' in page
    assert 'href="mailto:dana@office.example">dana@office.example</a>' in page


def test_a_staff_members_number_that_is_not_a_us_number_stays_plain_text(client_for, liaison):
    member = StaffMemberFactory(phone="ask at the desk", email="")
    url = reverse("partners:organization_detail", args=[member.organization.pk])

    page = client_for(liaison).get(url).content.decode()

    assert " · ask at the desk" in page
    assert "tel:" not in page.split('<h2 class="h5">Staff</h2>')[1].split("</ul>")[0]
