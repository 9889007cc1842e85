"""Generated bad input (hypothesis) for the two ways a referral arrives without a person
typing it into the app: an HL7 v2 order (the real 360X sample, damaged at random) and an
office's intake link (any text in any field). Either is taken or refused with a reason;
never a server error, never a half-made referral."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client, override_settings
from django.urls import reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from intake.hl7 import Hl7Error, read_referral_order
from intake.services import referral_import_hl7
from intake.tests.conftest import office_form_data
from intake.tests.test_hl7 import SAMPLE
from partners.factories import ProviderFactory
from referrals.models import Referral

FUZZ = settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ORDER = SAMPLE.read_bytes()
# Bytes an HL7 message gives meaning to, and some it should never contain.
SPECIAL = [b"|", b"^", b"~", b"\\", b"&", b"\r", b"\n", b"\x00", b"\xff", b"\xe9", b"MSH|", b""]


@st.composite
def damaged_orders(draw: st.DrawFn) -> bytes:
    """The sample with a few bytes replaced, inserted or cut, or a segment dropped or
    repeated."""
    data = bytearray(ORDER)
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        kind = draw(st.sampled_from(["replace", "insert", "cut", "segment"]))
        at = draw(st.integers(min_value=0, max_value=max(len(data) - 1, 0)))
        if kind == "replace" and data:
            data[at : at + 1] = draw(st.sampled_from(SPECIAL) | st.binary(min_size=1, max_size=3))
        elif kind == "insert":
            data[at:at] = draw(st.sampled_from(SPECIAL) | st.binary(max_size=40))
        elif kind == "cut":
            del data[at : at + draw(st.integers(min_value=1, max_value=200))]
        else:
            segments = bytes(data).split(b"\r")
            index = draw(st.integers(min_value=0, max_value=len(segments) - 1))
            segment = segments.pop(index)
            if draw(st.booleans()):
                segments[index:index] = [segment, segment]
            data = bytearray(b"\r".join(segments))
    return bytes(data)


@FUZZ
@given(data=damaged_orders())
def test_a_damaged_order_is_read_or_refused_with_a_reason(data: bytes) -> None:
    try:
        read_referral_order(data)
    except Hl7Error as error:
        assert str(error)


@pytest.mark.django_db
def test_a_damaged_order_imports_whole_or_not_at_all(coordinator: Any) -> None:
    ProviderFactory.create(first_name="Anthony", last_name="Allen")
    outcomes: set[str] = set()

    @FUZZ
    @given(data=damaged_orders())
    def attempt(data: bytes) -> None:
        before = Referral.objects.count()
        try:
            referral = referral_import_hl7(data=data, actor=coordinator)
        except Hl7Error as error:
            assert str(error)
            assert Referral.objects.count() == before
            outcomes.add("refused")
        else:
            assert referral.patient_last_name
            assert Referral.objects.count() == before + 1
            outcomes.add("imported")

    attempt()
    # Damage that leaves the order readable imports; the rest is refused: both happen.
    assert outcomes == {"imported", "refused"}


FIELDS = [
    "provider_choice",
    "patient_first_name",
    "patient_last_name",
    "patient_dob",
    "patient_phone",
    "reason",
    "urgency",
    "contact_name",
    "contact_phone",
    "other_npi",
]
# Text a browser can send: any Unicode but the surrogates, which have no UTF-8 form.
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=300) | st.sampled_from(
    ["0", "-1", "9" * 30, "2026-02-30", "1850-01-01", "3000-01-01", "\x00", " ", "NaN"]
)


@pytest.mark.django_db
def test_an_office_form_with_any_text_is_taken_or_shown_again_with_errors(
    link_and_token: Any,
) -> None:
    link, token = link_and_token
    url = reverse("intake:public_form", args=[token])
    outcomes: set[int] = set()

    @FUZZ
    @given(changes=st.dictionaries(st.sampled_from(FIELDS), TEXT, min_size=1, max_size=3))
    def attempt(changes: dict[str, str]) -> None:
        before = Referral.objects.count()
        response = Client().post(url, office_form_data(link.organization, **changes))
        assert response.status_code in (200, 302), changes
        if response.status_code == 200:
            assert "is-invalid" in response.content.decode(), changes
            assert Referral.objects.count() == before
        outcomes.add(response.status_code)

    # Every attempt counts against the link's hourly limit; here the limit is not the point.
    with override_settings(INTAKE_LINK_SUBMISSIONS_PER_HOUR=10**6):
        attempt()
    assert outcomes == {200, 302}
