"""The PDF's long tables: shortened only when another file of the same publication holds every
row (exporters/pdf_cap.py), with a line naming that file, the JSON document added when no
configured file holds it; complete in a PDF-only publication."""

from __future__ import annotations

import json
import re

import pytest
from pypdf import PdfReader

from compliance_reports.config.models import ExportSettings, ReportOptions
from compliance_reports.exporters import pdf_cap, render
from compliance_reports.exporters.pdf_exporter import render_html, write_pdf
from compliance_reports.reports import document as rd
from compliance_reports.reports.executive_summary import build as build_summary
from compliance_reports_tests.exporters.sample import sample_document, write_events

BASE = "hipaa-monthly_2026-11-01"
COLUMNS = [("event_id", "Event"), ("recipient", "Recipient"), ("purpose", "Purpose")]


def disclosures_document(rows: int) -> dict:
    """The sample document with a complete appendix table of `rows` disclosures, and page 1
    built from it (as the report builders do)."""
    document = sample_document()
    document["sections"].append(rd.appendix(rd.table(
        "disclosures", "Accounting of disclosures", COLUMNS,
        [{"event_id": i, "recipient": f"rcpt{i:05d}", "purpose": f"purp{i:05d}"} for i in range(1, rows + 1)],
        complete=True)))
    document["executive_summary"] = build_summary(document, verdict="VERIFIED", reason=None,
                                                  coverage_text="complete")
    rd.validate_document(document)
    return document


# ---------------------------------------------------------------- the decision


def test_json_and_xml_always_hold_a_table_csv_and_parquet_only_without_event_rows():
    everything = ["pdf", "csv", "json", "xml", "parquet", "xlsx"]
    assert pdf_cap.table_carriers(2150, everything, event_rows=True) == ["json", "xml", "xlsx"]
    assert pdf_cap.table_carriers(2150, everything, event_rows=False) == ["csv", "json", "xml", "parquet", "xlsx"]
    assert pdf_cap.table_carriers(2150, ["pdf", "csv", "parquet"], event_rows=True) == []
    assert pdf_cap.table_carriers(2150, ["pdf"], event_rows=False) == []
    # an Excel sheet holds 1,048,576 rows, its header included
    assert pdf_cap.table_carriers(1_048_575, ["xlsx"], event_rows=True) == ["xlsx"]
    assert pdf_cap.table_carriers(1_048_576, ["xlsx"], event_rows=True) == []


def test_the_events_are_held_by_csv_parquet_xml_and_a_sheet_they_fit():
    everything = ["pdf", "csv", "json", "xml", "parquet", "xlsx"]
    assert pdf_cap.event_carriers(199_669, everything) == ["csv", "xml", "parquet", "xlsx"]
    assert pdf_cap.event_carriers(2_000_000, everything) == ["csv", "xml", "parquet"]
    assert pdf_cap.event_carriers(10, ["pdf", "json"]) == []


def test_a_long_table_is_capped_only_when_another_file_holds_it_whole():
    document = disclosures_document(600)
    names = pdf_cap.published_names(document["header"], ["pdf", "csv", "parquet", "json", "xlsx"])
    caps = pdf_cap.table_caps(document, 500, ["pdf", "csv", "parquet", "json", "xlsx"], True, names)
    assert caps == {"disclosures": {
        "shown": 500, "total": 600, "files": [f"{BASE}.json", f"{BASE}.xlsx"],
        "note": f"500 of 600 rows shown; the complete table is in {BASE}.json and {BASE}.xlsx "
                "of this publication."}}
    # the CSV and Parquet files hold the events: nothing else holds the table, it stays whole
    assert pdf_cap.table_caps(document, 500, ["pdf", "csv", "parquet"], True, names) == {}
    assert pdf_cap.table_caps(document, 500, ["pdf"], False, names) == {}
    # without event rows the CSV holds the document's tables
    caps = pdf_cap.table_caps(document, 500, ["pdf", "csv"], False, names)
    assert caps["disclosures"]["files"] == [f"{BASE}.csv"]
    # at the limit: nothing to shorten
    assert pdf_cap.table_caps(document, 600, ["pdf", "json"], True, names) == {}


def test_the_json_document_joins_a_publication_whose_other_files_hold_only_events():
    document = disclosures_document(600)
    # csv and parquet with event rows: nothing configured holds the table, the JSON will
    assert pdf_cap.companion_formats(document, 500, ["csv", "parquet", "pdf"], True) == ["json"]
    assert pdf_cap.companion_formats(document, 500, ["pdf", "xlsx", "csv"], True) == []
    assert pdf_cap.companion_formats(document, 500, ["pdf", "csv"], False) == []
    assert pdf_cap.companion_formats(document, 500, ["pdf", "json"], True) == []
    # a PDF-only publication stays self-contained; no PDF, nothing to shorten
    assert pdf_cap.companion_formats(document, 500, ["pdf"], True) == []
    assert pdf_cap.companion_formats(document, 500, ["csv", "parquet"], True) == []
    # a table within the limit needs no companion
    assert pdf_cap.companion_formats(document, 600, ["pdf", "csv", "parquet"], True) == []


def test_a_pdf_with_event_files_names_the_added_json_that_holds_the_table(tmp_path, monkeypatch):
    """The issue's publication (csv, parquet, pdf with event rows) gets the JSON document; the
    PDF lists the first rows of the long table and names it; the CSV still holds the events."""
    monkeypatch.setattr(render, "PDF_PROCESS_MIN_ROWS", 0)
    events = write_events(tmp_path / "events.parquet", n=5)
    files = render.export_all(disclosures_document(90), events, ["csv", "parquet", "pdf"],
                              ExportSettings(), tmp_path / "out", pdf_event_limit=5,
                              pdf_table_row_limit=30)
    assert [f.format for f in files] == ["csv", "parquet", "pdf", "json"]
    by_format = {f.format: f for f in files}
    _, text = _text(by_format["pdf"].path)
    assert f"30 of 90 rows shown; the complete table is in {BASE}.json of this publication." in text
    assert "rcpt00031" not in text
    written = json.loads(by_format["json"].path.read_text("utf-8"))
    assert len(next(s for s in written["sections"] if s["id"] == "disclosures")["rows"]) == 90
    assert by_format["csv"].path.read_text("utf-8").count("\n") >= 6  # header and the 5 events


def test_the_named_files_are_the_files_of_the_publication(tmp_path):
    events = write_events(tmp_path / "events.parquet", n=5)
    export = ExportSettings(compression="gzip")
    files = render.export_all(sample_document(), events, ["pdf", "json", "xlsx"], export,
                              tmp_path / "out", pdf_event_limit=5)
    names = pdf_cap.published_names(sample_document()["header"], ["pdf", "json", "xlsx"], "gzip")
    assert names == {f.format: f.filename for f in files}
    assert names["json"] == f"{BASE}.json.gz"
    assert pdf_cap.published_names({"report_id": "r", "period": "2026-11-01"}, ["csv"], "zip", True) == {
        "csv": "r_2026-11-01.csv.zip.enc"}


def test_the_process_decision_counts_the_rows_the_pdf_lays_out():
    document = disclosures_document(2150)
    full = render.pdf_rows(document, None, True, 0, 500, ["pdf"])
    capped = render.pdf_rows(document, None, True, 0, 500, ["pdf", "json"])
    assert full - capped == 2150 - 500


def test_the_limit_is_a_validated_report_option():
    assert ReportOptions().pdf_table_row_limit == pdf_cap.DEFAULT_TABLE_ROW_LIMIT == 200
    assert ReportOptions(pdf_table_row_limit=25).pdf_table_row_limit == 25
    for bad in (24, 100_001, True, "500"):
        with pytest.raises(ValueError, match="pdf_table_row_limit"):
            ReportOptions(pdf_table_row_limit=bad)


# ---------------------------------------------------------------- the HTML and the PDF


def test_html_keeps_the_full_count_and_names_the_files():
    document = disclosures_document(120)
    html = render_html(document, None, formats=["pdf", "json", "xml"], table_row_limit=30)
    assert html.count("rcpt") == 30 and "rcpt00030" in html and "rcpt00031" not in html
    note = (f"30 of 120 rows shown; the complete table is in {BASE}.json and {BASE}.xml of this "
            "publication.")
    assert note in html
    # page 1 still states every row, and says where they are
    assert "the complete list, 120 rows (the first 30 here; every row in " in html
    assert "rows: the complete list." not in html
    # the document given to the renderer is not changed
    assert len(document["sections"][-1]["rows"]) == 120


def test_a_long_complete_table_in_the_body_points_to_its_shortened_appendix():
    document = sample_document()
    rows = [{"n": i} for i in range(60)]
    document["sections"].insert(1, rd.table("long-complete", "Long complete", [("n", "N")], rows,
                                            complete=True))
    html = render_html(document, None, formats=["pdf", "json"], table_row_limit=25)
    assert (f"60 rows: the first 25 are listed in Appendix A at the end of this document, every "
            f"row in {BASE}.json.") in html
    assert "25 of 60 rows shown" in html


def test_a_builder_capped_table_keeps_its_own_note_below_the_pdf_cap():
    document = sample_document(table_rows=40)  # 40 of 45 rows in the document
    html = render_html(document, None, formats=["pdf", "json"], table_row_limit=25)
    assert "25 of 40 rows shown; the complete table is in" in html
    assert "Showing 40 of 45 rows." in html


def _text(path) -> tuple[int, str]:
    pages = PdfReader(str(path)).pages
    return len(pages), re.sub(r"\s+", " ", "\n".join(p.extract_text() for p in pages))


def test_pdf_shows_n_of_m_rows_and_stays_short(tmp_path):
    events = write_events(tmp_path / "events.parquet", n=40)
    document = disclosures_document(3000)
    out = write_pdf(document, events, tmp_path / "capped.pdf", event_limit=10,
                    formats=["pdf", "csv", "parquet", "json"], table_row_limit=40)
    pages, text = _text(out)
    assert (f"40 of 3,000 rows shown; the complete table is in {BASE}.json of this publication."
            in text)
    assert "rcpt00040" in text and "rcpt00041" not in text
    assert "the complete list, 3,000 rows (the first 40 here; every row in" in text
    # the event listing names the files that hold every event
    assert (f"10 of 40 rows shown; the complete table is in {BASE}.csv and {BASE}.parquet of "
            "this publication.") in text
    # 3,000 rows are ~60 landscape pages; 40 rows fit on two
    short, _ = _text(write_pdf(disclosures_document(40), events, tmp_path / "short.pdf", event_limit=10,
                               formats=["pdf", "csv", "parquet", "json"], table_row_limit=40))
    assert pages <= short + 1


def test_pdf_stays_complete_when_no_other_file_holds_the_table(tmp_path):
    events = write_events(tmp_path / "events.parquet", n=5)
    document = disclosures_document(90)
    out = write_pdf(document, events, tmp_path / "complete.pdf", event_limit=5,
                    formats=["pdf", "csv", "parquet"], table_row_limit=30)
    _, text = _text(out)
    assert all(f"rcpt{i:05d}" in text for i in range(1, 91))
    assert "rows shown" not in text
    assert "90 rows: the complete list." in text


@pytest.mark.parametrize("formats", [["pdf"], ["pdf", "json"]])
def test_a_publication_caps_its_pdf_only_with_a_file_that_holds_the_table(tmp_path, monkeypatch, formats):
    """Through export_all, with the PDF in its own process: a PDF-only publication lists every
    row; with the JSON it lists the first rows and names the JSON file, which holds them all."""
    monkeypatch.setattr(render, "PDF_PROCESS_MIN_ROWS", 0)
    document = disclosures_document(90)
    files = render.export_all(document, None, formats, ExportSettings(include_events=False),
                              tmp_path / "out", pdf_event_limit=5, pdf_table_row_limit=30)
    by_format = {f.format: f for f in files}
    _, text = _text(by_format["pdf"].path)
    if "json" in formats:
        assert f"30 of 90 rows shown; the complete table is in {BASE}.json of this publication." in text
        assert "rcpt00031" not in text
        written = json.loads(by_format["json"].path.read_text("utf-8"))
        assert len(next(s for s in written["sections"] if s["id"] == "disclosures")["rows"]) == 90
    else:
        assert all(f"rcpt{i:05d}" in text for i in range(1, 91)) and "rows shown" not in text
