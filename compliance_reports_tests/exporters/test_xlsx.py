"""XLSX export read back with pandas and openpyxl: values, types, layout, guard, row limit,
determinism."""

from __future__ import annotations

import hashlib
import zipfile
from datetime import datetime

import pandas as pd
import pytest
from openpyxl import load_workbook

from compliance_reports.config.models import ExportSettings
from compliance_reports.exporters.csv_exporter import neutralise, unguard
from compliance_reports.exporters.render import export_all
from compliance_reports.exporters.xlsx_exporter import CUT_MARKER, EXCEL_MAX_CELL_CHARS, sheet_name, write_xlsx
from compliance_reports.reports import document as rd
from compliance_reports_tests.exporters.sample import FORMULA, sample_document, sample_events, write_events


@pytest.fixture
def events(tmp_path):
    return write_events(tmp_path / "events.parquet", n=40)


def _utc_ms(value: datetime) -> datetime:
    return value.replace(tzinfo=None, microsecond=value.microsecond // 1000 * 1000)


def test_sheets_values_and_types(tmp_path, events):
    doc = sample_document()
    out = write_xlsx(doc, events, tmp_path / "r.xlsx", formats=["csv"])
    sheets = pd.read_excel(out, sheet_name=None)
    # attestation and text sections hold no table; the events come last
    assert list(sheets) == ["Summary", "Scope", "Access by user", "PHI access by resource type",
                            "Denied access", "Findings", "Integrity findings", "Events"]

    summary = dict(zip(sheets["Summary"]["Field"], sheets["Summary"]["Value"]))
    assert summary["Period"] == "November 2026" and summary["Period key"] == "2026-11-01"
    assert summary["Report"] == doc["header"]["report_name"]
    assert summary["Window start (UTC)"] == datetime(2026, 10, 31, 23, 0)
    for item in doc["summary"]:
        assert summary[item["label"]] == item["value"]
    assert summary["critical"] == summary["warning"] == summary["info"] == 1

    access = sheets["Access by user"]
    table = next(s for s in doc["sections"] if s["id"] == "access-by-user")
    assert list(access.columns) == [c["title"] for c in table["columns"]]
    assert access["Accesses"].head(12).tolist() == [r["accesses"] for r in table["rows"]]
    assert access["After hours"].head(12).tolist() == [r["after_hours"] for r in table["rows"]]
    last_seen = access["Last seen"].head(12).tolist()
    assert last_seen[1] == datetime(2026, 11, 2, 10, 0) and pd.isna(last_seen[0])
    assert "Showing 12 of 17 rows." in access.iloc[-1, 0] and "Top users only" in access.iloc[-1, 0]

    findings = sheets["Findings"]
    assert findings["Severity"].tolist() == ["critical", "warning", "info"]
    assert findings["Evidence event ids"][0] == "1001 1002 1003"

    ev = sheets["Events"]
    expected = sample_events(40)
    assert list(ev.columns)[:2] == ["id", "timestamp (UTC)"]
    assert str(ev["id"].dtype) == "int64" and ev["id"].tolist() == [e["id"] for e in expected]
    assert pd.api.types.is_datetime64_any_dtype(ev["timestamp (UTC)"])
    assert [t.to_pydatetime() for t in ev["timestamp (UTC)"]] == [_utc_ms(e["timestamp"]) for e in expected]
    assert ev["details"][1] == '{"session_context":{"ip_address":"10.0.0.1","user_agent":"Mozilla/5.0 (X11, Linux)"},"n":1}'
    assert pd.isna(ev["target_resource_id"][0]) and ev["target_resource_id"][1] == "pat-0001"


def test_layout_frozen_headers_filters_and_date_formats(tmp_path, events):
    out = write_xlsx(sample_document(), events, tmp_path / "r.xlsx")
    wb = load_workbook(out)
    ev = wb["Events"]
    assert ev.freeze_panes == "A2" and wb["Access by user"].freeze_panes == "A2"
    assert ev.auto_filter.ref == "A1:N41"
    assert wb["Access by user"].auto_filter.ref == "A1:E13"
    assert ev["B2"].is_date and ev["B2"].number_format == "yyyy-mm-dd hh:mm:ss.000"
    assert ev["A1"].font.bold


def test_text_cells_are_guarded_like_csv_and_never_formulas(tmp_path, events):
    out = write_xlsx(sample_document(), events, tmp_path / "r.xlsx")
    wb = load_workbook(out)
    texts = []
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (ws.title, cell.coordinate)
                if isinstance(cell.value, str):
                    texts.append(cell.value)
    assert "'" + FORMULA in texts and FORMULA not in texts
    assert "'=HYPERLINK(\"x\")" in texts and "'+SUM(A1:A2)" in texts and "'-2+3" in texts
    assert all(not t.startswith(("=", "+", "-", "@", "\t", "\r")) for t in texts)
    events_sheet = pd.read_excel(out, sheet_name="Events")
    # the CSV guard, cell for cell; XML normalises line ends, so a CR reads back as LF
    guarded = [neutralise(e["principal_id"]).replace("\r", "\n") for e in sample_events(40)]
    assert events_sheet["principal_id"].tolist() == guarded
    assert unguard(events_sheet["principal_id"][0]) == FORMULA


def test_events_stop_at_the_row_limit_with_a_note(tmp_path):
    events = write_events(tmp_path / "events.parquet", n=40, row_group_size=7)
    out = write_xlsx(sample_document(), events, tmp_path / "r.xlsx", formats=["pdf", "parquet"],
                     max_rows=10, batch_rows=4)
    ws = load_workbook(out)["Events"]
    assert ws.max_row == 10
    ids = [ws.cell(row=r, column=1).value for r in range(2, 10)]
    assert ids == [e["id"] for e in sample_events(40)[:8]]
    note = ws.cell(row=10, column=1).value
    assert "40 events" in note and "10 rows" in note and "first 8" in note and "Parquet export" in note
    assert ws.auto_filter.ref == "A1:N9"

    exact = write_xlsx(sample_document(), events, tmp_path / "exact.xlsx", max_rows=41)
    assert load_workbook(exact)["Events"].max_row == 41  # 40 events and the header: no note


def test_long_text_is_cut_with_a_marker_and_control_characters_replaced(tmp_path):
    doc = sample_document()
    doc["sections"].append(rd.table("long", "Long", [("text", "Text")],
                                    [{"text": "x" * 40_000}, {"text": "bell\x07here"}]))
    wb = load_workbook(write_xlsx(doc, None, tmp_path / "r.xlsx"))
    cut = wb["Long"]["A2"].value
    assert len(cut) == EXCEL_MAX_CELL_CHARS and cut.endswith(CUT_MARKER)
    assert wb["Long"]["A3"].value == "bell\ufffdhere"
    assert "Events" not in wb.sheetnames


def test_same_document_same_bytes_and_fixed_timestamps(tmp_path, events):
    a = write_xlsx(sample_document(), events, tmp_path / "a.xlsx")
    b = write_xlsx(sample_document(), events, tmp_path / "b.xlsx")
    assert hashlib.sha256(a.read_bytes()).hexdigest() == hashlib.sha256(b.read_bytes()).hexdigest()
    with zipfile.ZipFile(a) as zf:
        assert {i.date_time for i in zf.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        core = zf.read("docProps/core.xml").decode()
    assert core.count("2026-12-01T06:00:03Z") == 2  # created and modified: the document's generated_at
    other = sample_document()
    other["summary"][0]["value"] += 1
    assert write_xlsx(other, events, tmp_path / "c.xlsx").read_bytes() != a.read_bytes()


def test_sheet_names_are_valid_and_unique():
    taken: set[str] = set()
    names = [sheet_name(t, taken) for t in [
        "Summary", "summary", "Privileged and audit-configuration changes", "a/b:c*d?[e]\\f",
        "History", "", "x" * 40, "x" * 40,
    ]]
    assert len({n.lower() for n in names}) == len(names)
    for name in names:
        assert 0 < len(name) <= 31 and not set(name) & set("[]:*?/\\")
    assert names[1] == "summary (2)" and names[2] == "Privileged and audit"
    assert names[4] != "History"


def test_export_all_names_and_media_type(tmp_path, events):
    [f] = export_all(sample_document(), events, ["xlsx"], ExportSettings(), tmp_path / "out", pdf_event_limit=5)
    assert f.filename == "hipaa-monthly_2026-11-01.xlsx"
    assert f.media_type == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    assert zipfile.is_zipfile(f.path)


def test_summary_shows_the_change_against_the_previous_period_when_the_document_has_it(tmp_path):
    doc = sample_document()
    doc["summary"][0].update({"change": -1250, "change_pct": -2.53})
    summary = pd.read_excel(write_xlsx(doc, None, tmp_path / "r.xlsx"), sheet_name="Summary", header=None)
    heading = summary.index[summary[0] == "Headline figures"][0]
    assert summary.iloc[heading].tolist() == ["Headline figures", "Value", "Change", "Change (%)"]
    assert summary.iloc[heading + 1].tolist() == ["Total events", 48213, -1250, -2.53]
    assert pd.isna(summary.iloc[heading + 2, 2])  # a figure without a change leaves it empty
