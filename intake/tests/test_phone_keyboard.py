import re

from django.test import Client
from django.urls import reverse


def test_the_public_forms_npi_brings_up_the_keypad(link_and_token):
    # A referring office on a phone types the ten digits of an NPI it has to add.
    _, token = link_and_token

    page = Client().get(reverse("intake:public_form", args=[token])).content.decode()

    npi = re.search(r'<input[^>]*name="other_npi"[^>]*>', page)
    assert npi and 'inputmode="numeric"' in npi.group(0)
