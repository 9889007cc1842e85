"""Fields a phone types only digits into ask for the keypad: on a phone, a number typed on
the letter keyboard is a keyboard switch and back for every one."""

import re

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def _input(page: str, name: str) -> str:
    match = re.search(rf'<input[^>]*name="{name}"[^>]*>', page)
    assert match, name
    return match.group(0)


def test_the_office_forms_fax_npi_and_zip_bring_up_the_keypad(client_for, manager):
    page = client_for(manager).get(reverse("partners:organization_create")).content.decode()

    assert 'type="tel"' in _input(page, "fax")
    assert 'inputmode="numeric"' in _input(page, "npi")
    assert 'inputmode="numeric"' in _input(page, "zip_code")
    # A phone number may carry an extension ("x12"), which a phone's keypad cannot type.
    assert 'type="text"' in _input(page, "phone")
