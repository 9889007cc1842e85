"""Report charts as server-rendered SVG (pygal), inlined in the page beside their table.

pygal draws the chart in Python, so the page needs no chart JavaScript, no CDN and no
npm step; its optional tooltip script is switched off (js=[]) and its inline config
script removed, so the SVG is static markup. Its inline <style> and the hidden tooltip's
style attribute are removed too (the Content-Security-Policy refuses inline styles): the
same rules, the same for every chart, are in static/css/charts.css, written by
`stylesheet()` (`python -m referrals.charts > static/css/charts.css` after a pygal upgrade
or a change to STYLE; a test says when the file is out of date). The viewBox is narrow and the text large
enough to stay readable when a phone scales the chart down to its width.

Charts carry no user-typed text (partner names stay in the page's own HTML), and the SVG
is serialised by ElementTree, which escapes every text and attribute."""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterator, Sequence
from xml.etree import ElementTree as ET

import pygal
from django.utils.safestring import SafeString, mark_safe
from pygal.style import Style

# Bootstrap's primary blue and orange: distinct for common colour blindness too.
STYLE = Style(
    background="transparent",
    plot_background="transparent",
    foreground="#212529",
    foreground_strong="#212529",
    foreground_subtle="#6c757d",
    colors=("#0d6efd", "#fd7e14", "#198754"),
    font_family="system-ui, -apple-system, 'Segoe UI', Roboto, Arial, sans-serif",
    title_font_size=17,
    legend_font_size=15,
    label_font_size=14,
    major_label_font_size=14,
    value_font_size=13,
    tooltip_font_size=13,
    # "No data in this period" must fit the narrow viewBox (pygal's 64 px overflowed it).
    no_data_font_size=20,
)
WIDTH = 420


def bar_chart(
    *,
    title: str,
    description: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float | None]]],
    horizontal: bool = False,
    percent: bool = False,
    height: int = 300,
) -> SafeString:
    """An accessible SVG bar chart: role="img", labelled by its <title> and <desc>."""
    if len(series) > len(STYLE.colors):
        # static/css/charts.css colours as many series as STYLE has colours.
        raise ValueError(f"A chart shows at most {len(STYLE.colors)} series.")
    chart_class = pygal.HorizontalBar if horizontal else pygal.Bar
    many = len(labels) > 8
    long_names = any(len(name) > 12 for name, _ in series)
    if horizontal:
        # pygal draws the first label at the bottom; the table beside it reads top down.
        labels = list(reversed(labels))
        series = [(name, list(reversed(values))) for name, values in series]
    chart = chart_class(
        js=[],
        style=STYLE,
        width=WIDTH,
        height=height,
        explicit_size=False,
        disable_xml_declaration=True,
        title=title,
        legend_at_bottom=True,
        legend_at_bottom_columns=1 if long_names else len(series),
        truncate_legend=-1,
        x_label_rotation=0 if horizontal or not many else 45,
        # A label every few bars when there are many: still readable on a phone.
        x_labels_major_every=None if horizontal or len(labels) <= 12 else max(2, len(labels) // 8),
        show_minor_x_labels=horizontal or len(labels) <= 12,
        truncate_label=-1,
        range=(0, 100) if percent else None,
        y_labels=[0, 25, 50, 75, 100] if percent else count_ticks(series),
        value_formatter=(lambda v: f"{v:.0f}%") if percent else (lambda v: f"{v:.0f}"),
        no_data_text="No data in this period",
        margin=8,
        # Room for the last value label ("100%") centred on the right edge of the axis.
        margin_right=24 if horizontal else None,
        spacing=8,
    )
    chart.x_labels = list(labels)
    for name, values in series:
        chart.add(name, list(values))
    return _static_svg(chart.render_tree(), description)


def count_ticks(series: Sequence[tuple[str, Sequence[float | None]]]) -> list[int]:
    """Whole-number axis labels for counts, at most six, a round step apart (1, 2, 5, 10,
    20, 50...): pygal's own ticks are fractions, which a count axis shows as 0, 0, 1, 1."""
    top = max((v for _, values in series for v in values if v is not None), default=0)
    if not top:
        return [0, 1]
    step = next(step for step in _round_steps() if top / step <= 5)
    return list(range(0, math.ceil(top / step) * step + 1, step))


def _round_steps() -> Iterator[int]:
    scale = 1
    while True:
        yield from (scale, 2 * scale, 5 * scale)
        scale *= 10


def stylesheet() -> str:
    """pygal's rules for every chart drawn with STYLE, for .pygal-chart (the class pygal
    gives each chart's <svg>) instead of one chart's id: static/css/charts.css."""
    chart = pygal.Bar(js=[], style=STYLE)
    for number in range(len(STYLE.colors)):  # a rule per series colour
        chart.add(f"series {number}", [1])
    rules = "\n".join(style.text or "" for style in chart.render_tree().iter("style"))
    return re.sub(r"#chart-[0-9a-f-]{36}", ".pygal-chart", rules) + "\n"


def _static_svg(svg: ET.Element, description: str) -> SafeString:
    """Drop pygal's scripts, styles, comments and (script-driven) tooltip, and label the
    chart for assistive technology."""
    for parent in list(svg.iter()):
        for child in list(parent):
            if child.tag in ("script", "style", ET.Comment) or child.get("class") == "tooltip":
                parent.remove(child)
    prefix = f"chart-{uuid.uuid4().hex[:8]}"
    title = svg.find("title")
    desc = ET.Element("desc", id=f"{prefix}-desc")
    desc.text = description
    labelled_by = [f"{prefix}-desc"]
    if title is not None:
        title.set("id", f"{prefix}-title")
        labelled_by.insert(0, f"{prefix}-title")
        svg.insert(list(svg).index(title) + 1, desc)
    else:
        svg.insert(0, desc)
    svg.set("role", "img")
    svg.set("aria-labelledby", " ".join(labelled_by))
    svg.set("class", f"{svg.get('class', '')} report-chart".strip())
    # Escaped by the serialiser (see the module docstring), hence safe to inline.
    return mark_safe(ET.tostring(svg, encoding="unicode"))  # noqa: S308


if __name__ == "__main__":
    print(stylesheet(), end="")
