"""Charts drawn as SVG: the same data gives the same bytes, whatever else matplotlib did."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

import matplotlib

from compliance_reports.exporters.chart_svg import chart_svg, chart_url, section_id
from compliance_reports.reports.document import chart

SECTION = chart(
    "chart_activity", "Activity per day", "stacked_bar",
    [f"{d:02d} Nov" for d in range(1, 31)],
    [{"name": "Other outcomes", "role": "main", "values": [400 + d for d in range(30)]},
     {"name": "Failures", "role": "failure", "values": [d % 7 for d in range(30)]}],
    alt="Bar chart of events per day", x_label="Local day", y_label="Events",
)
DEADLINE = chart(
    "chart_dsr_age", "Open requests by age", "stacked_bar", ["0-30 d", "30-60 d"],
    [{"name": "Within", "values": [3, 0]}, {"name": "Past", "role": "failure", "values": [0, 2]}],
    alt="Requests by age", x_label="Age", y_label="Requests",
    reference={"label": "Deadline (30 days)", "at": "30-60 d"},
)
TOP = chart("chart_top_principals", "Top principals", "barh", ["usr-1", "usr-2"],
            [{"name": "Events", "values": [14304, 12]}], alt="Top", x_label="Events",
            y_label="Principal")


def test_same_data_same_bytes():
    for section in (SECTION, DEADLINE, TOP):
        first = chart_svg(section)
        assert chart_svg(section) == first
        # global matplotlib settings changed in between do not reach the chart
        with matplotlib.rc_context({"svg.hashsalt": "other", "font.size": 20, "svg.fonttype": "path"}):
            assert chart_svg(section) == first


def test_svg_is_vector_with_text_and_no_date():
    svg = chart_svg(TOP)
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    text = svg.decode("utf-8")
    assert "<dc:date>" not in text and "Date" not in text
    # text stays text (svg.fonttype none): labels and thousands separators are searchable
    labels = re.findall(r">([^<>]+)</text>", text)
    assert labels == ["0", "3,000", "6,000", "9,000", "12,000", "Events", "usr-1", "usr-2",
                      "Principal"]
    assert "<image" not in text  # no raster picture inside


def test_reference_line_is_drawn_and_labelled():
    text = chart_svg(DEADLINE).decode("utf-8")
    assert "Deadline (30 days)" in text
    assert "#b3261e" in text  # the critical colour of report.css


def test_the_chart_url_names_its_section():
    assert chart_url(SECTION) == "chart:chart_activity"
    odd = {"id": "a/b c?#é"}
    assert section_id(chart_url(odd)) == odd["id"] and "/" not in chart_url(odd)[len("chart:"):]
    assert section_id("file:///etc/passwd") is None
