import pytest
from django.urls import reverse, set_script_prefix

from core.jinja_env import url


@pytest.mark.parametrize(
    ("name", "args"),
    [
        ("referrals:detail", (7,)),
        ("referrals:detail", (0,)),
        ("referrals:claim", (123456,)),
        ("partners:provider_detail", (42,)),
        ("referrals:list", ()),
    ],
)
def test_url_is_the_address_reverse_gives(name, args):
    assert url(name, *args) == reverse(name, args=args or None)


def test_url_follows_the_prefix_the_site_is_mounted_under():
    try:
        set_script_prefix("/crm/")
        assert (
            url("referrals:detail", 5)
            == "/crm/referrals/5/"
            == reverse("referrals:detail", args=[5])
        )
    finally:
        set_script_prefix("/")
    assert url("referrals:detail", 5) == "/referrals/5/"


def test_url_with_other_arguments_still_reverses():
    assert url("referrals:detail", "9") == reverse("referrals:detail", args=["9"])
    assert url("referrals:detail", pk=9) == reverse("referrals:detail", kwargs={"pk": 9})
