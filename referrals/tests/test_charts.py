"""Charts of the reciprocity and conversion reports: server-rendered SVG beside the tables,
labelled for assistive technology, with no script."""

import re
from datetime import date, datetime
from pathlib import Path

import pytest
from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from partners.factories import ProviderFactory
from referrals.charts import bar_chart, stylesheet
from referrals.factories import ReferralFactory
from referrals.models import Inquiry
from referrals.selectors import reciprocity_over_time
from referrals.services.workflow import referral_log

pytestmark = pytest.mark.django_db


def _at(day: date) -> datetime:
    return timezone.make_aware(datetime(day.year, day.month, day.day, 12))


def _referral(provider, day: date, direction="inbound"):
    return referral_log(
        referral=ReferralFactory.build(
            provider=provider,
            direction=direction,
            received_at=_at(day),
            out_of_network_reason="Patient preference",
        ),
        actor=None,
    )


def _svg(page: str) -> str:
    found = re.findall(r"<svg.*?</svg>", page, flags=re.S)
    assert len(found) == 1, "one chart on the page"
    return found[0]


def test_every_month_of_the_period_is_listed_with_its_counts_and_quiet_months_as_zero():
    ours, other = ProviderFactory(), ProviderFactory()
    _referral(ours, date(2026, 1, 10))
    _referral(ours, date(2026, 1, 20))
    _referral(ours, date(2026, 3, 5), direction="outbound")
    _referral(other, date(2026, 3, 6))
    _referral(other, date(2025, 12, 31))  # before the period
    kind, rows = reciprocity_over_time(since=date(2026, 1, 1), until=date(2026, 3, 31))
    assert kind == "month"
    assert [(r["label"], r["received"], r["sent"], r["balance"]) for r in rows] == [
        ("Jan 2026", 2, 0, -2),
        ("Feb 2026", 0, 0, 0),
        ("Mar 2026", 1, 1, 0),
    ]
    _, mine = reciprocity_over_time(since=date(2026, 1, 1), until=date(2026, 3, 31), provider=ours)
    assert [(r["received"], r["sent"]) for r in mine] == [(2, 0), (0, 0), (0, 1)]


def test_months_the_period_covers_only_in_part_say_which_days(client_for, manager):
    _, rows = reciprocity_over_time(since=date(2025, 12, 4), until=date(2026, 2, 10))
    assert [(r["label"], r["part"]) for r in rows] == [
        ("Dec 2025", "Dec 4 to 31"),
        ("Jan 2026", ""),
        ("Feb 2026", "Feb 1 to 10"),
    ]
    _, whole = reciprocity_over_time(since=date(2026, 1, 1), until=date(2026, 2, 28))
    assert [r["part"] for r in whole] == ["", ""]
    page = client_for(manager).get(
        reverse("referrals:reciprocity"), {"since": "2025-12-04", "until": "2026-02-10"}
    )
    table = page.content.decode().split('data-testid="flow-table"')[1].split("</table>")[0]
    assert "Dec 2025 <span" in table and "(Dec 4 to 31 only)" in table
    assert "Jan 2026</th>" in table
    assert "Dec 2025*" in _svg(page.content.decode())


def test_a_long_period_is_shown_year_by_year_from_the_first_year_with_data_to_its_end():
    provider = ProviderFactory()
    _referral(provider, date(2021, 6, 1))
    _referral(provider, date(2023, 2, 1), direction="outbound")
    kind, rows = reciprocity_over_time(since=date(1990, 1, 1), until=date(2026, 12, 31))
    assert kind == "year"
    # The years since the last referral are there, as zeros: a partner who stopped
    # referring shows it, rather than a chart that ends as if nothing had changed.
    assert [(r["label"], r["received"], r["sent"]) for r in rows] == [
        ("2021", 1, 0),
        ("2022", 0, 0),
        ("2023", 0, 1),
        ("2024", 0, 0),
        ("2025", 0, 0),
        ("2026", 0, 0),
    ]
    # A period ending in the past ends there; one running on past this year ends now.
    _, rows = reciprocity_over_time(since=date(1990, 1, 1), until=date(2024, 12, 31))
    assert [r["label"] for r in rows] == ["2021", "2022", "2023", "2024"]
    this_year = timezone.localdate().year
    _, rows = reciprocity_over_time(since=date(1990, 1, 1), until=date(this_year + 5, 1, 1))
    assert rows[-1]["label"] == str(this_year)


def test_a_chart_is_static_accessible_svg():
    svg = bar_chart(
        title="Received vs sent per month",
        description="Jan: 2 received",
        labels=["Jan", "Feb"],
        series=[("Received", [2, 0]), ("Sent", [0, 1])],
    )
    assert svg.startswith("<svg")
    assert "<script" not in svg and "http" not in svg.replace("http://www.w3.org/2000/svg", "")
    assert 'role="img"' in svg
    title_id, desc_id = re.search(r'aria-labelledby="([^"]+)"', svg).group(1).split()
    assert re.search(rf'<title id="{title_id}">Received vs sent per month</title>', svg)
    assert re.search(rf'<desc id="{desc_id}">Jan: 2 received</desc>', svg)
    # Scales to its column: a viewBox and no fixed width.
    assert 'viewBox="0 0 420 300"' in svg and "width=" not in svg.split(">")[0]


def test_a_chart_carries_no_inline_style_for_the_content_security_policy_to_refuse():
    svg = bar_chart(
        title="Received vs sent per month",
        description="Jan: 2 received",
        labels=["Jan", "Feb"],
        series=[("Received", [2, 0]), ("Sent", [0, 1])],
    )
    assert "<style" not in svg and "style=" not in svg
    assert 'class="pygal-chart report-chart"' in svg


def test_the_chart_stylesheet_is_the_one_pygal_writes_for_our_style():
    served = Path(settings.BASE_DIR, "static/css/charts.css").read_text()
    assert served == stylesheet(), (
        "static/css/charts.css is out of date: "
        ".venv/bin/python -m referrals.charts > static/css/charts.css"
    )
    for series in range(3):
        assert f".pygal-chart .color-{series}," in served


def test_a_chart_refuses_more_series_than_the_stylesheet_colours():
    with pytest.raises(ValueError, match="at most 3 series"):
        bar_chart(
            title="Too many",
            description="",
            labels=["Jan"],
            series=[(name, [1]) for name in "abcd"],
        )


def test_the_reciprocity_report_shows_the_chart_beside_the_monthly_table(client_for, manager):
    provider = ProviderFactory(last_name="Okonkwo")
    today = timezone.localdate()
    _referral(provider, today)
    _referral(provider, today, direction="outbound")
    page = client_for(manager).get(reverse("referrals:reciprocity")).content.decode()
    svg = _svg(page)
    assert "Received vs sent per month" in svg
    assert f"{today:%b %Y}: 1 received, 1 sent" in svg
    assert 'data-testid="flow-table"' in page
    assert page.count('<tr><th scope="row"') == 13  # twelve months back and this one
    assert "Over time: all partners" in page


def test_one_partner_over_time_is_reached_from_its_row(client_for, manager):
    ours, other = ProviderFactory(last_name="Okonkwo"), ProviderFactory(last_name="Brandt")
    today = timezone.localdate()
    _referral(ours, today)
    for _ in range(3):
        _referral(other, today)
    client = client_for(manager)
    page = client.get(reverse("referrals:reciprocity")).content.decode()
    assert f"provider={ours.pk}#flow-heading" in page
    page = client.get(reverse("referrals:reciprocity"), {"provider": ours.pk}).content.decode()
    assert f"Over time: {ours.display_name}" in page
    assert f"{today:%b %Y}: 1 received, 0 sent" in _svg(page)
    # A period change keeps the partner.
    assert f'name="provider" value="{ours.pk}"' in page


def test_a_partner_over_time_from_page_two_keeps_page_two(client_for, manager):
    today = timezone.localdate()
    for _ in range(27):
        _referral(ProviderFactory(), today)
    page = client_for(manager).get(reverse("referrals:reciprocity"), {"page": 2}).content.decode()
    links = re.findall(r'href="\?([^"]*)#flow-heading"', page)
    assert links and all(link.endswith("&amp;page=2") for link in links)


def test_a_bad_partner_is_reported_not_crashed_on(client_for, manager):
    response = client_for(manager).get(reverse("referrals:reciprocity"), {"provider": "nope"})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()


def test_the_conversion_report_charts_each_source_funnel_as_shares(client_for, manager):
    for _ in range(4):
        Inquiry.objects.create(source=Inquiry.Source.WEB, received_at=timezone.now())
    Inquiry.objects.create(
        source=Inquiry.Source.WEB, status=Inquiry.Status.SEEN_NEW_PATIENT, seen_at=timezone.now()
    )
    page = client_for(manager).get(reverse("referrals:conversion")).content.decode()
    svg = _svg(page)
    assert "Funnel by source (% of inquiries)" in svg
    assert "Web (n=5)" in svg and "Self (n=0)" in svg
    assert "Web: 20% scheduled, 20% seen of 5 inquiries" in svg
    assert "Advertising: no inquiries" in svg
    # The table stays beside the chart.
    assert 'data-testid="conversion-web"' in page


def test_charts_render_with_no_data_at_all(client_for, manager):
    client = client_for(manager)
    for name in ("referrals:reciprocity", "referrals:conversion"):
        response = client.get(reverse(name), {"since": "2001-01-01", "until": "2001-02-01"})
        assert response.status_code == 200
        assert "<svg" in response.content.decode()


def _y_axis_labels(svg: str) -> list[str]:
    from xml.etree import ElementTree as ET

    root = ET.fromstring(svg)  # noqa: S314 - the SVG this test just drew
    axis = next(
        g for g in root.iter("{http://www.w3.org/2000/svg}g") if "axis y" in g.get("class", "")
    )
    return [t.text or "" for t in axis.iter("{http://www.w3.org/2000/svg}text")]


@pytest.mark.parametrize(
    ("top", "labels"),
    [
        (0, ["0", "1"]),
        (1, ["0", "1"]),
        (3, ["0", "1", "2", "3"]),
        (9, ["0", "2", "4", "6", "8", "10"]),
        (26, ["0", "10", "20", "30"]),
        (480, ["0", "100", "200", "300", "400", "500"]),
    ],
)
def test_a_count_axis_is_labelled_in_whole_round_numbers(top, labels):
    svg = bar_chart(
        title="Received vs sent per month",
        description="Jan",
        labels=["Jan", "Feb"],
        series=[("Received", [top, 0]), ("Sent", [0, None])],
    )

    assert _y_axis_labels(svg) == labels


def test_a_percent_bar_chart_leaves_room_for_its_100_percent_label():
    svg = bar_chart(
        title="Conversion by source",
        description="Partner referral: 100%",
        labels=["Partner referral", "Insurance directory"],
        series=[("Seen as new patient", [100, 50])],
        horizontal=True,
        percent=True,
    )

    plot_x = float(re.search(r'translate\(([\d.]+), [\d.]+\)" class="plot"', svg).group(1))
    label_x = float(re.search(r'<text x="([\d.]+)"[^>]*>100%</text>', svg).group(1))
    # The label is centred on its tick; about 32 px wide at the chart's font size.
    assert plot_x + label_x + 16 <= 420


def test_the_no_data_text_fits_across_the_chart():
    from referrals.charts import STYLE, WIDTH

    text = "No data in this period"
    # An average glyph of a sans-serif face is about 0.6 em wide.
    assert len(text) * STYLE.no_data_font_size * 0.6 < WIDTH - 2 * 8
    css = (Path(settings.BASE_DIR) / "static/css/charts.css").read_text()
    assert f"font-size:{STYLE.no_data_font_size}px}}" in css.split("text.no_data{")[1]
