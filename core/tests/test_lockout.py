from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.db.models import F
from django.urls import reverse

from core.factories import DEMO_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db


def test_a_login_with_a_huge_username_is_refused_not_crashed_on(client):
    response = client.post("/accounts/login/", {"username": "x" * 20_000, "password": "wrong"})
    assert response.status_code == 200
    assert AccessAttempt.objects.get().username == "x" * 255


def test_a_normal_failed_login_is_recorded_under_its_username(client):
    client.post("/accounts/login/", {"username": "maria", "password": "wrong"})
    assert AccessAttempt.objects.get().username == "maria"


def _lockout_started(ago: timedelta) -> None:
    """Time passes for the lockout: its failures were made `ago` earlier than recorded."""
    AccessAttempt.objects.update(attempt_time=F("attempt_time") - ago)


def test_trying_again_while_locked_out_does_not_make_the_lockout_longer(client):
    UserFactory(username="target")
    for _ in range(5):
        client.post(reverse("login"), {"username": "target", "password": "wrong"})
    _lockout_started(timedelta(minutes=10))
    # The page says 15 minutes; the user tries their right password after ten.
    early = client.post(reverse("login"), {"username": "target", "password": DEMO_PASSWORD})
    assert early.status_code == 429
    _lockout_started(timedelta(minutes=6))
    response = client.post(reverse("login"), {"username": "target", "password": DEMO_PASSWORD})
    assert response.status_code == 302
    assert response.wsgi_request.user.username == "target"
