"""The demo's HIPAA monthly and GDPR weekly PDFs read back with pypdf: page 1 is the executive
summary with the headline figures, the order is findings, analysis, appendices, the main body of
the HIPAA monthly fits in 12 pages, and no identifier or timestamp is broken across lines.

The audit data is the demo seed (two organizations, 65 days to 2026-12-01, 600 events a day),
the configurations those of examples/reports.yaml.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timezone

import pytest
from pypdf import PdfReader

from compliance_reports.config.models import ReportConfig, ReportOptions
from compliance_reports.db import migrate
from compliance_reports.db.engine import make_engine
from compliance_reports.demo.seed import SeedOptions, seed_audit_log
from compliance_reports.exporters.events import read_formatted_rows
from compliance_reports.exporters.pdf_exporter import appendices, render_html, write_pdf
from compliance_reports.reports.builder import build_report

GENERATED_AT = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
MAIN_BODY_MAX_PAGES = 12
HIPAA = {
    "id": "stmarys-hipaa-monthly", "name": "St Mary's monthly HIPAA audit trail",
    "organization_id": "org-stmarys", "report_type": "hipaa_audit_trail",
    "schedule": {"frequency": "monthly", "time": "06:00", "timezone": "America/New_York",
                 "day_of_month": 1},
    "formats": ["pdf", "csv", "json"],
}
GDPR = {
    "id": "nordklinik-gdpr-weekly", "name": "Nordklinik GDPR processing activities (weekly)",
    "organization_id": "org-nordklinik", "report_type": "gdpr_processing_activities",
    "schedule": {"frequency": "weekly", "time": "07:00", "timezone": "Europe/Berlin",
                 "day_of_week": "monday"},
    "formats": ["pdf", "json", "xml"],
}


@pytest.fixture(scope="module")
def demo_engine(tmp_path_factory):
    engine = make_engine(f"sqlite:///{tmp_path_factory.mktemp('demo') / 'demo.db'}")
    migrate.upgrade_all(engine, engine)
    seed_audit_log(engine, SeedOptions(orgs=2, days=65, events_per_day=600,
                                       end_date=date(2026, 12, 1)))
    yield engine
    engine.dispose()


def render(engine, config, period, tmp_path_factory):
    folder = tmp_path_factory.mktemp(config["id"])
    events = folder / "events.parquet"
    build = build_report(engine, engine, ReportConfig.model_validate(config), period,
                         run_id="run-demo", generated_at=GENERATED_AT, events_path=events)
    pdf = write_pdf(build.document, events, folder / "report.pdf", event_limit=200,
                    formats=config["formats"])
    reader = PdfReader(str(pdf))
    # runs of spaces between table cells and badges vary with the layout: one space each
    pages = [re.sub(r"[ \t]+", " ", page.extract_text()) for page in reader.pages]
    return build.document, events, reader, pages


@pytest.fixture(scope="module")
def hipaa(demo_engine, tmp_path_factory):
    return render(demo_engine, HIPAA, "2026-11-01", tmp_path_factory)


@pytest.fixture(scope="module")
def gdpr(demo_engine, tmp_path_factory):
    return render(demo_engine, GDPR, "2026-11-23", tmp_path_factory)


def heading_page(pages, heading):
    """Index of the first page after page 1 where ``heading`` stands on a line of its own."""
    for index, text in enumerate(pages[1:], start=1):
        if heading in text.splitlines():
            return index
    raise AssertionError(f"no page holds the heading {heading!r}")


def first_appendix_page(pages):
    return next(i for i, t in enumerate(pages) if i and re.search(r"^Appendix A: ", t, re.M))


def test_page_one_is_the_executive_summary(hipaa):
    doc, _, _, pages = hipaa
    first = pages[0]
    assert "Executive summary" in first
    assert "November 2026" in first and "America/New_York" in first
    assert "October 2026" in first  # the previous period's column
    for item in doc["executive_summary"]["headline"]:
        value = item["value"]
        if isinstance(value, int):
            assert f"{value:,}" in first, item
        if item.get("change") is not None:
            change = f"{item['change']:+,}".replace("-", "\u2212")
            assert change in first, item
    assert "Integrity VERIFIED" in first
    assert "Findings by severity" in first and "Where the details are" in first
    found = doc["executive_summary"]["findings"]
    assert f"CRITICAL {found['critical']} WARNING {found['warning']} INFO {found['info']}" in first
    # the 32 principals with repeated failed logins are one rule, one line
    assert re.search(r"Repeated failed logins: \d+ principals or resources", first)
    # page numbers of the details, from the PDF itself
    assert re.search(r"Anomalies: \d+ findings, each with its evidence event ids \(page 2\)", first)


def test_order_and_main_body_length(hipaa):
    doc, _, reader, pages = hipaa
    findings = heading_page(pages, "Anomalies")
    chart = heading_page(pages, "Activity per day")
    analysis = heading_page(pages, "ePHI access by category")
    attestation = heading_page(pages, "Review and attestation")
    appendix = first_appendix_page(pages)
    assert 1 == findings <= chart <= analysis <= attestation < appendix
    assert appendix <= MAIN_BODY_MAX_PAGES  # pages 1..appendix are the main body
    letters = appendices(doc)
    assert list(letters) == ["privileged_changes", "emergency_access", "bulk_exports", "disclosures"]
    for section_id, letter in letters.items():
        title = next(s["title"] for s in doc["sections"] if s["id"] == section_id)
        assert heading_page(pages, f"Appendix {letter}: {title}") >= appendix
    assert heading_page(pages, "Appendix E: Events") > heading_page(pages, "Appendix D: Accounting of disclosures")
    # November 2026 in New York: 30 local days, the first one 25 hours long (DST ends), and
    # the activity chart accounts for every event of the window
    activity = next(s for s in doc["sections"] if s["id"] == "chart_activity")
    assert activity["chart"]["categories"][0] == "01 Nov" and len(activity["chart"]["categories"]) == 30
    assert sum(sum(x["values"]) for x in activity["chart"]["series"]) == doc["header"]["event_count"]
    # appendices are landscape, the main body portrait
    for index, page in enumerate(reader.pages):
        landscape = page.mediabox.width > page.mediabox.height
        assert landscape == (index >= appendix), index
    assert len(pages) <= 40


def test_the_accounting_of_disclosures_lists_its_first_rows_and_names_the_json(hipaa):
    """The demo month has more disclosures than the PDF lists: the PDF shows the first
    options.pdf_table_row_limit and names the JSON of the same publication, which holds every
    row (exporters/pdf_cap.py; a PDF-only publication lists them all, test_edges)."""
    doc, _, _, pages = hipaa
    table = next(s for s in doc["sections"] if s["id"] == "disclosures")
    limit = ReportOptions().pdf_table_row_limit
    assert table["complete"] and len(table["rows"]) > limit
    text = "\n".join(pages)
    for row in table["rows"][:limit]:
        assert row["date"] in text and row["date_local"] in text, row["event_id"]
    assert (f"{limit} of {len(table['rows']):,} rows shown; the complete table is in "
            f"stmarys-hipaa-monthly_2026-11-01.json of this publication.") in re.sub(r"\s+", " ", text)


def tokens(doc, events):
    """Identifiers and timestamps the PDF prints: principals, resources, actions, patients,
    times, in the document's tables and the events appendix."""
    found = set()
    _, listed = read_formatted_rows(events, 200)
    for row in listed:
        found |= {row["timestamp"], row["principal_id"], row["action"], row["target_resource_id"]}
    for section in doc["sections"]:
        for row in section.get("rows") or []:
            for key, value in row.items():
                if isinstance(value, str) and not re.search(r"\s", value) and (
                        key.endswith(("_id", "_utc", "_local")) or key in (
                            "date", "action", "resource", "principal_id", "patient_id")):
                    found.add(value)
        for finding in section.get("findings") or []:
            for row in (finding.get("subjects") or {}).get("rows") or []:
                found.add(row["subject"])
    return {t for t in found if t and len(t) > 3}


def broken(text, token):
    return [k for k in range(1, len(token)) if f"{token[:k]}\n{token[k:]}" in text]


@pytest.mark.parametrize("which", ["hipaa", "gdpr"])
def test_no_identifier_or_timestamp_is_broken(which, request):
    doc, events, _, pages = request.getfixturevalue(which)
    text = "\n".join(pages)
    listed = tokens(doc, events)
    assert len(listed) > 50
    assert {t for t in listed if broken(text, t)} == set()
    # the tokens are printed whole (those of sections shown in the PDF)
    shown = [t for t in listed if t in text]
    assert len(shown) > 0.9 * len(listed)
    assert not re.search(r"\d{4}-\d\d-\d\dT\d*\n", text)  # no timestamp cut after its T


def test_numbers_are_right_aligned_with_separators(hipaa):
    doc, events, _, _ = hipaa
    html = render_html(doc, events, event_limit=200, formats=HIPAA["formats"])
    phi = next(i["value"] for i in doc["summary"] if i["label"] == "PHI access events")
    assert phi >= 1000
    assert f'<td class="num">{phi:,}</td>' in html
    # event ids take no separators
    first_id = next(s for s in doc["sections"] if s["id"] == "disclosures")["rows"][0]["event_id"]
    assert f'<td class="num">{first_id}</td>' in html


def test_gdpr_page_one_names_its_critical_finding(gdpr):
    doc, _, _, pages = gdpr
    first = pages[0]
    assert "Week 48 (23-29 November 2026)" in first and "Europe/Berlin" in first
    assert "Week 47 (16-22 November 2026)" in first
    found = doc["executive_summary"]["findings"]
    assert found["critical"] >= 1
    # the age chart's requests past the deadline are the overdue requests of the finding
    age = next(s for s in doc["sections"] if s["id"] == "chart_dsr_age")
    past = next(x["values"] for x in age["chart"]["series"] if x["name"] == "Past the deadline")
    assert sum(past) == doc["data"]["data_subject_requests"]["overdue"]["total"] > 0
    assert "CRITICAL Data-subject requests open past the deadline" in first
    assert heading_page(pages, "Findings") <= heading_page(pages, "Activity per day") < heading_page(
        pages, "Personal-data processing by legal basis (Art. 6)") < first_appendix_page(pages)


def test_charts_are_vector_graphics_with_text(gdpr):
    doc, _, reader, pages = gdpr
    index = heading_page(pages, "Open data-subject requests by age")
    text = pages[index]
    # the axis labels and the legend are text in the PDF, not pixels
    age = next(s for s in doc["sections"] if s["id"] == "chart_dsr_age")
    for label in age["chart"]["categories"] + ["Within the deadline", "Past the deadline"]:
        assert label in text, label
    assert age["alt"] in text.replace("\n", " ")  # the alt text is the caption too
    objects = reader.pages[index]["/Resources"]["/XObject"]
    kinds = {obj.get_object().get("/Subtype") for obj in objects.values()}
    assert kinds == {"/Form"}  # vector drawings; no raster image
