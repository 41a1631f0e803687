"""PDF export: real WeasyPrint output read back with pypdf."""

from __future__ import annotations

import re

import pytest
from pypdf import PdfReader

from compliance_reports.exporters.pdf_exporter import environment, render_html, write_pdf
from compliance_reports_tests.exporters.sample import (
    FORMULA,
    SCRIPT,
    big_table_document,
    sample_document,
    write_events,
)


@pytest.fixture(scope="module")
def events(tmp_path_factory):
    return write_events(tmp_path_factory.mktemp("events") / "events.parquet", n=40)


@pytest.fixture(scope="module")
def sample_pdf(tmp_path_factory, events):
    out = tmp_path_factory.mktemp("pdf") / "report.pdf"
    write_pdf(sample_document(), events, out, event_limit=15, formats=["pdf", "csv"])
    reader = PdfReader(str(out))
    pages = [page.extract_text() for page in reader.pages]
    return out, reader, pages


def test_pdf_is_a_real_pdf_with_header_and_summary(sample_pdf):
    out, reader, pages = sample_pdf
    assert out.read_bytes().startswith(b"%PDF-")
    text = "\n".join(pages)
    doc = sample_document()
    assert "hipaa-monthly" in text
    assert "2026-11-01" in text
    for item in doc["summary"]:
        if isinstance(item["value"], int) and not isinstance(item["value"], bool):
            assert f"{item['value']:,}" in text, item  # thousands separators
    # Window in local time and UTC, time zone, run id, events hash
    assert "2026-11-01T00:00:00+01:00" in text
    assert "2026-10-31T23:00:00Z" in text
    assert "Europe/Berlin" in text
    assert "run-7f3a" in text
    assert "ab" * 32 in text


def test_pdf_special_characters_are_text(sample_pdf):
    _, _, pages = sample_pdf
    text = "\n".join(pages)
    for needle in ("é", "Ω", "Ж", "Ωμέγα", "Жук", "Crème brûlée"):
        assert needle in text, needle
    # The text section holds the payload on one line: it is shown literally, not dropped.
    assert SCRIPT in text
    assert "<b>not bold</b>" in text
    assert FORMULA in text


def test_pdf_footer_page_x_of_y_and_report_id(sample_pdf):
    _, reader, pages = sample_pdf
    total = len(reader.pages)
    for number, text in enumerate(pages, start=1):
        assert f"Page {number} of {total}" in text
        assert "hipaa-monthly" in text


def test_pdf_sections_findings_attestation_and_events(sample_pdf):
    _, _, pages = sample_pdf
    text = "\n".join(pages)
    for title in ("Scope", "Access by user", "PHI access by resource type", "Findings", "Method",
                  "Attestation", "Events"):
        assert title in text
    assert "CRITICAL" in text and "BULK_ACCESS" in text
    assert "1001, 1002, 1003" in text
    assert "and 20 more" in text  # 70 evidence ids, 50 shown
    assert "Reviewer name" in text and "Signature" in text and "Date" in text
    assert "Showing 12 of 17 rows." in text
    assert "No rows." in text and "No findings." in text
    # events capped at the limit, with the note
    assert "2026-11-01T00:00:00.123Z" in re.sub(r"\s+", "", text) or "00:00:00." in text
    assert ("15 of 40 rows shown; the complete table is in hipaa-monthly_2026-11-01.csv of this "
            "publication.") in re.sub(r"\s+", " ", text)


def test_long_table_spans_pages_with_repeated_headers(tmp_path):
    out = tmp_path / "big.pdf"
    write_pdf(big_table_document(300), None, out, formats=["pdf"])
    reader = PdfReader(str(out))
    assert len(reader.pages) > 1
    pages = [p.extract_text() for p in reader.pages]
    # the "All accesses" table header (N User Action When) repeats on its continuation pages
    header_pages = [i for i, t in enumerate(pages) if re.search(r"N\s+User\s+Action\s+When", t)]
    assert len(header_pages) >= 3
    assert f"Page {len(pages)} of {len(pages)}" in pages[-1]


def test_html_is_autoescaped():
    env = environment()
    assert env.autoescape is True
    html = render_html(sample_document())
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>not bold</b>" not in html


def test_pdf_without_events_has_no_events_section(tmp_path):
    html = render_html(sample_document(), None)
    assert 'id="section-events"' not in html and "events-table" not in html
    events_html = render_html(sample_document(), write_events(tmp_path / "e.parquet", n=3))
    assert 'class="section appendix events"' in events_html


def test_pdf_event_note_without_listing_formats(tmp_path):
    events = write_events(tmp_path / "e.parquet", n=5)
    html = render_html(sample_document(), events, event_limit=2, formats=["pdf"])
    assert "3 more events not shown" in html


def test_pdf_event_limit_zero_and_empty_period(tmp_path):
    from compliance_reports_tests.exporters.sample import EVENT_SCHEMA

    events = write_events(tmp_path / "e.parquet", n=4)
    html = render_html(sample_document(), events, event_limit=0, formats=["pdf", "parquet"])
    assert "events-table" not in html and "No events in this period" not in html
    assert ("0 of 4 rows shown; the complete table is in hipaa-monthly_2026-11-01.parquet of this "
            "publication.") in html
    import pyarrow.parquet as pq

    pq.write_table(EVENT_SCHEMA.empty_table(), tmp_path / "none.parquet")
    html = render_html(sample_document(), tmp_path / "none.parquet", event_limit=10)
    assert "No events in this period" in html and "more events" not in html


def test_pdf_target_and_generator_are_not_doubled(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from compliance_reports.reports.builder import GENERATOR_VERSION
    from compliance_reports_tests.exporters.sample import EVENT_SCHEMA, sample_events

    events = sample_events(3)
    # the demo and FHIR sources write the type into the id; others do not
    events[0].update(target_resource_type="Patient", target_resource_id="Patient/p-001871")
    events[1].update(target_resource_type="Observation", target_resource_id="o-77")
    events[2].update(target_resource_type=None, target_resource_id=None)
    path = tmp_path / "events.parquet"
    pq.write_table(pa.Table.from_pylist(events, schema=EVENT_SCHEMA), path)
    document = sample_document(event_count=3)
    document["header"]["generator_version"] = GENERATOR_VERSION
    out = write_pdf(document, path, tmp_path / "report.pdf")
    text = re.sub(r"\s+", " ", "\n".join(p.extract_text() for p in PdfReader(str(out)).pages))
    assert "Patient/p-001871" in text and "Patient/Patient" not in text
    assert "Observation/o-77" in text
    assert f"by {GENERATOR_VERSION}" in text
    assert "compliance_reports compliance_reports" not in text
    # a header that carries only the version still names the generator once
    html = render_html(sample_document())
    assert "by compliance_reports 0.1.0" in html and 'content="compliance_reports 0.1.0"' in html


def test_only_long_complete_tables_go_to_an_appendix():
    from compliance_reports.exporters.pdf_exporter import APPENDIX_AFTER_ROWS
    from compliance_reports.reports import document as rd

    document = sample_document()
    long_rows = [{"n": i} for i in range(APPENDIX_AFTER_ROWS + 1)]
    document["sections"][1:1] = [
        rd.table("long-complete", "Long complete", [("n", "N")], long_rows, complete=True),
        rd.table("short-complete", "Short complete", [("n", "N")], long_rows[:3], complete=True),
        rd.table("long-plain", "Long plain", [("n", "N")], long_rows),
    ]
    html = render_html(document)
    assert html.count('class="section appendix ') == 1
    assert 'id="appendix-long-complete"' in html
    assert f"{APPENDIX_AFTER_ROWS + 1} rows, all listed in Appendix A" in html
    assert "Appendix A: Long complete" in html and "Appendix B" not in html


def _table_rows_per_page(tmp_path, rows):
    # PDF only: no other file holds the table, so the PDF lays out every row (pdf_cap)
    out = write_pdf(big_table_document(rows), None, tmp_path / f"big-{rows}.pdf", formats=["pdf"])
    pattern = re.compile(r"user-\d+\s+fhir\.patient\.read\s+2026-11-")
    return [len(pattern.findall(page.extract_text())) for page in PdfReader(str(out)).pages]


def test_no_page_starts_or_ends_a_table_with_a_single_row(tmp_path):
    # How many rows of the table fit on its first page, then one more: laid out naively, the
    # last row would stand alone on the next page.
    counts = [n for n in _table_rows_per_page(tmp_path, 300) if n]
    assert len(counts) >= 3 and sum(counts) == 300
    fits = counts[0]
    counts = [n for n in _table_rows_per_page(tmp_path, fits + 1) if n]
    assert sum(counts) == fits + 1 and len(counts) == 2
    assert min(counts) >= 2, counts
