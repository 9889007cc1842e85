import pytest
from axes.models import AccessAttempt

pytestmark = pytest.mark.django_db


def test_a_login_with_a_huge_username_is_refused_not_crashed_on(client):
    response = client.post("/accounts/login/", {"username": "x" * 20_000, "password": "wrong"})
    assert response.status_code == 200
    assert AccessAttempt.objects.get().username == "x" * 255


def test_a_normal_failed_login_is_recorded_under_its_username(client):
    client.post("/accounts/login/", {"username": "maria", "password": "wrong"})
    assert AccessAttempt.objects.get().username == "maria"
