"""The back office shows whose second-factor devices exist and deletes them (a lost phone),
but never shows or changes a secret."""

from __future__ import annotations

from base64 import b32encode

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import NoReverseMatch, reverse
from django_otp.plugins.otp_static.models import StaticDevice, StaticToken
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts import services

pytestmark = pytest.mark.django_db


def enrolled(user: User) -> tuple[TOTPDevice, list[str]]:
    device = services.authenticator_pending(user=user)
    codes = services.authenticator_confirm(device=device)
    device.refresh_from_db()
    return device, codes


def test_the_authenticator_page_never_shows_the_secret_key(
    back_office: Client, manager: User
) -> None:
    device, _ = enrolled(manager)
    secrets = (device.key, b32encode(device.bin_key).decode().rstrip("="))

    listing = back_office.get(reverse("admin:otp_totp_totpdevice_changelist"))
    page = back_office.get(reverse("admin:otp_totp_totpdevice_change", args=[device.pk]))

    assert listing.status_code == 200
    assert page.status_code == 200
    assert "manager" in listing.content.decode()
    assert "last used" in page.content.decode().lower()
    for content in (listing.content.decode(), page.content.decode()):
        assert not any(secret in content for secret in secrets)
        assert "otpauth://" not in content


def test_the_backup_codes_page_shows_how_many_are_left_but_not_the_codes(
    back_office: Client, manager: User
) -> None:
    _, codes = enrolled(manager)
    StaticToken.objects.filter(token=codes[0]).delete()  # one used
    static = StaticDevice.objects.get(user=manager)

    listing = back_office.get(reverse("admin:otp_static_staticdevice_changelist")).content
    page = back_office.get(reverse("admin:otp_static_staticdevice_change", args=[static.pk]))
    # The confirmation page lists what goes with the device: the codes, by number only.
    deleting = back_office.get(reverse("admin:otp_static_staticdevice_delete", args=[static.pk]))

    assert page.status_code == 200
    assert deleting.status_code == 200
    assert b'<td class="field-codes_left">9</td>' in listing
    for content in (listing.decode(), page.content.decode(), deleting.content.decode()):
        assert not any(code in content for code in codes)


def test_no_secret_can_be_added_or_edited_and_the_qr_code_page_is_gone(
    back_office: Client, manager: User
) -> None:
    device, _ = enrolled(manager)
    assert back_office.get(reverse("admin:otp_totp_totpdevice_add")).status_code == 403
    assert back_office.get(reverse("admin:otp_static_staticdevice_add")).status_code == 403
    key = device.key
    response = back_office.post(
        reverse("admin:otp_totp_totpdevice_change", args=[device.pk]),
        {"user": manager.pk, "name": "x", "key": "00" * 20, "confirmed": "on"},
    )
    assert response.status_code == 403
    device.refresh_from_db()
    assert device.key == key
    with pytest.raises(NoReverseMatch):
        reverse("admin:otp_totp_totpdevice_config", kwargs={"pk": device.pk})


def test_deleting_an_authenticator_signs_its_user_out_everywhere(
    back_office: Client, manager: User, liaison: User
) -> None:
    device, _ = enrolled(manager)
    phone, laptop, bystander = Client(), Client(), Client()
    phone.force_login(manager)
    laptop.force_login(manager)
    bystander.force_login(liaison)

    response = back_office.post(
        reverse("admin:otp_totp_totpdevice_delete", args=[device.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    assert not TOTPDevice.objects.filter(user=manager).exists()
    for client in (phone, laptop):
        assert client.get(reverse("core:dashboard"))["Location"].startswith(reverse("login"))
    assert bystander.get(reverse("core:dashboard")).status_code == 200
    # The administrator who did it is still signed in.
    assert back_office.get(reverse("admin:index")).status_code == 200


def test_deleting_devices_in_bulk_signs_each_user_out(
    back_office: Client, manager: User, coordinator: User
) -> None:
    devices = [enrolled(manager)[0], enrolled(coordinator)[0]]
    signed_in = Client()
    signed_in.force_login(coordinator)

    back_office.post(
        reverse("admin:otp_totp_totpdevice_changelist"),
        {
            "action": "delete_selected",
            "_selected_action": [d.pk for d in devices],
            "post": "yes",
        },
    )

    assert not TOTPDevice.objects.exists()
    assert signed_in.get(reverse("core:dashboard"))["Location"].startswith(reverse("login"))
