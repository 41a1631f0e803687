"""The PDF process and its user-agent stylesheet (exporters/pdf_writer.py): what keeps the
memory of laying out a report PDF down, without changing what the PDF shows."""

from __future__ import annotations

import hashlib
import io
import re

import pytest
from pypdf import PdfReader
from weasyprint import HTML
from weasyprint import html as weasy_html
from weasyprint.css import ComputedStyle

from compliance_reports.exporters import pdf_cap, pdf_process, pdf_writer
from compliance_reports.exporters.pdf_exporter import charts, render_html
from compliance_reports.reports import document as rd
from compliance_reports.reports.executive_summary import build as build_summary
from compliance_reports_tests.exporters.sample import big_table_document, write_events

# Imported by the exporters but not by WeasyPrint: none of them belongs in the PDF process.
HEAVY_MODULES = ("pyarrow", "pydantic", "sqlalchemy", "cryptography", "jinja2")


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    return write_events(tmp_path_factory.mktemp("events") / "events.parquet", n=40)


def report_with_lists(rows: int = 60) -> dict:
    """A document with a chart, a long table and page 1's lists (top findings, where the
    details are)."""
    document = big_table_document(rows)
    document["sections"].insert(0, rd.chart(
        "chart_activity", "Activity per day", "stacked_bar", ["01 Nov", "02 Nov", "03 Nov"],
        [{"name": "Other outcomes", "role": "main", "values": [400, 380, 12]},
         {"name": "Failures", "role": "failure", "values": [3, 0, 1]}],
        alt="Bar chart of events per day", x_label="Local day", y_label="Events"))
    rd.validate_document(document)
    document["executive_summary"] = build_summary(document, verdict="VERIFIED", reason=None,
                                                  coverage_text="complete")
    return document


def test_the_pdf_process_loads_weasyprint_and_nothing_of_the_exporters(tmp_path, events, monkeypatch,
                                                                        capfd):
    """The caller renders the HTML; the child draws the charts and lays it out (the exporters'
    imports and the Arrow reading of the events used to hold ~190 MB of the child's peak)."""
    report = (f"import sys; sys.stderr.write('heavy: ' + repr(sorted(m for m in {HEAVY_MODULES!r}"
              " if m in sys.modules)) + '\\n')\n")
    monkeypatch.setattr(pdf_process, "_CHILD", pdf_process._CHILD + report)
    document = report_with_lists()
    names = pdf_cap.published_names(document["header"], ["pdf", "csv"])
    out = tmp_path / "report.pdf"
    child = pdf_process.start(document, events, True, out, 5, ["pdf", "csv"],
                              pdf_cap.DEFAULT_TABLE_ROW_LIMIT, names)
    try:
        digest = child.result()
    finally:
        child.stop()
    assert "heavy: []" in capfd.readouterr().err
    assert digest == hashlib.sha256(out.read_bytes()).hexdigest()
    reader = PdfReader(str(out))
    chart_page = next(p for p in reader.pages if "Bar chart of events per day" in p.extract_text())
    assert "02 Nov" in chart_page.extract_text()  # the chart's axis, drawn as text
    drawn = chart_page["/Resources"]["/XObject"].values()
    assert {x.get_object().get("/Subtype") for x in drawn} == {"/Form"}


def test_the_user_agent_sheet_leaves_out_only_the_rules_for_every_elements_pseudo_elements():
    ours, theirs = pdf_writer.user_agent_css().splitlines(), weasy_html.UA.splitlines()
    left_out = [line for line in theirs if line not in ours]
    assert [line.split(" {")[0] for line in left_out] == [
        "::marker", "::footnote-call", "::footnote-marker", "::note-call", "::note-marker",
        "::note-callback"]
    assert [line for line in ours if line not in theirs] == [
        left_out[0].replace("::marker", "li::marker")]
    # no rule left that gives every element of the document a pseudo-element style
    assert not [line for line in ours if re.match(r"\s*::", line)]


def test_one_computed_style_per_element_and_the_same_pages(events, monkeypatch):
    """WeasyPrint's own sheet makes six more computed styles for each element (one per
    pseudo-element rule naming no element), alive while the document is laid out: about half
    of a table row's memory. The report's sheet makes at most one, and its pages are drawn by
    the very same operators."""
    document = report_with_lists()
    html = render_html(document, events, event_limit=40, formats=["pdf", "csv"])
    assert "<li>" in html  # the lists' markers are drawn the same too
    elements = sum(1 for _ in HTML(string=html).etree_element.iter())
    made = []
    original_init = ComputedStyle.__init__

    def counted_init(self, *args, **kwargs):
        made.append(1)
        original_init(self, *args, **kwargs)

    monkeypatch.setattr(ComputedStyle, "__init__", counted_init)

    def styles_and_pdf(html_class):
        made.clear()
        with monkeypatch.context() as patch:
            patch.setattr(pdf_writer, "ReportHTML", html_class)
            laid_out = pdf_writer.layout(html, charts(document))
        return len(made), [(p.width, p.height) for p in laid_out.pages], laid_out.write_pdf()

    styles, pages, pdf = styles_and_pdf(pdf_writer.ReportHTML)
    plain_styles, plain_pages, plain_pdf = styles_and_pdf(HTML)
    assert styles < 1.5 * elements and plain_styles > 5 * elements
    assert len(pages) > 2 and pages == plain_pages
    assert page_streams(pdf) == page_streams(plain_pdf)


def page_streams(pdf: bytes) -> list[bytes]:
    return [page.get_contents().get_data() for page in PdfReader(io.BytesIO(pdf)).pages]
