"""A NUL byte in an admin list's filter (a hand-edited address, a scanner) reached the
database, which refuses it in text: a server error. The admin answers 400 saying why."""

from __future__ import annotations

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def test_a_nul_byte_in_an_admin_filter_is_a_clear_400_not_a_server_error(client_for, administrator):
    client = client_for(administrator)
    url = reverse("admin:audit_patientdataaccess_changelist")

    refused = client.get(url, {"action__exact": "\x00"})
    fine = client.get(url, {"action__exact": "view"})

    assert refused.status_code == 400
    assert "NUL" in refused.content.decode()
    assert fine.status_code == 200
