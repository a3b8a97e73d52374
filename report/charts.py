"""Charts as inline SVG, drawn by pygal (https://www.pygal.org) and stripped of every script.

pygal writes a <script> holding its configuration for its optional tooltip JavaScript even
when no script file is asked for (`js=[]`). The pages forbid scripts (a browser would log each
one it refuses as an error), so an XML filter (`add_xml_filter`, pygal's way to edit the tree
before it is serialised) removes them: the values are printed on the bars instead of shown in
tooltips, and the chart reads the same on paper. Labels are tree text, escaped by the XML
serialiser, so a hostile owner or folder name stays text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import pygal
from markupsafe import Markup
from pygal.style import Style

STYLE = Style(
    font_family="DejaVu Sans, Arial, sans-serif",
    background="white",
    plot_background="white",
    colors=("#1f4e79", "#c55a11", "#548235", "#7f6000", "#7030a0", "#a50021"),
    title_font_size=16,
    label_font_size=12,
    major_label_font_size=12,
    value_font_size=11,
    legend_font_size=12,
)
Formatter = Callable[[float], str]


def _without_scripts(root: Any) -> Any:
    for parent in list(root.iter()):
        for child in list(parent):
            if isinstance(child.tag, str) and child.tag.rsplit("}", 1)[-1] == "script":
                parent.remove(child)
    return root


def _options(title: str, height: int, formatter: Formatter | None) -> dict[str, Any]:
    return {
        "title": title,
        "js": [],
        "disable_xml_declaration": True,
        "style": STYLE,
        "width": 900,
        "height": height,
        "print_values": True,
        "truncate_label": 40,
        "truncate_legend": 40,
        **({"value_formatter": formatter} if formatter is not None else {}),
    }


def _svg(chart: Any) -> Markup:
    chart.add_xml_filter(_without_scripts)
    # The serialiser escaped every label; the SVG is markup by construction.
    return Markup(chart.render(is_unicode=True))  # noqa: S704


def bars(
    title: str,
    labels: Sequence[str],
    series: dict[str, Sequence[float]],
    formatter: Formatter | None = None,
    stacked: bool = False,
) -> Markup:
    """Horizontal bars, one row per label (read top to bottom in the labels' order)."""
    kind = pygal.HorizontalStackedBar if stacked else pygal.HorizontalBar
    height = 140 + 28 * max(1, len(labels)) * (1 if stacked else max(1, len(series)))
    options = _options(title, min(height, 1400), formatter)
    # Stacked segments too thin for their figure would print it over their neighbours': the
    # table beside the chart has the figures.
    chart = kind(**{**options, "print_values": not stacked}, show_legend=len(series) > 1)
    chart.x_labels = list(reversed(labels))
    for name, values in series.items():
        chart.add(name, list(reversed(values)))
    return _svg(chart)


def timeline(
    title: str, labels: Sequence[str], series: dict[str, Sequence[float]], formatter: Formatter
) -> Markup:
    """Values over time as bars, one per label (a minute); labels thinned out to about
    twelve. Bars, not a line: minutes without writes (between runs) are left out, and a line
    would draw a slope across the gap."""
    chart = pygal.Bar(
        **{**_options(title, 380, formatter), "print_values": False},
        x_label_rotation=30,
        show_minor_x_labels=False,
        show_legend=False,
    )
    chart.x_labels = list(labels)
    step = max(1, len(labels) // 12)
    chart.x_labels_major = list(labels)[::step]
    for name, values in series.items():
        chart.add(name, list(values))
    return _svg(chart)
