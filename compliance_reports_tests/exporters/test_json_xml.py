"""JSON and XML exports: round trips, escaping, structure."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pyarrow.parquet as pq

from compliance_reports.exporters.json_exporter import write_json
from compliance_reports.exporters.xml_exporter import read_value, write_xml
from compliance_reports.audit.hashing import iso_millis
from compliance_reports.reports.document import HEADER_FIELDS
from compliance_reports_tests.exporters.sample import SCRIPT, sample_document, sample_events, write_events


def test_json_round_trips_and_is_canonical(tmp_path):
    document = sample_document()
    out = write_json(document, tmp_path / "r.json")
    raw = out.read_bytes()
    assert json.loads(raw.decode("utf-8")) == document
    assert raw.endswith(b"}\n") and not raw.endswith(b"\n\n")
    assert "Ωμέγα".encode() in raw and b"\\u" not in raw  # non-ASCII kept
    assert raw.decode().startswith('{\n  "data"')  # sorted keys, indent 2


def test_xml_structure_and_values_round_trip(tmp_path):
    document = sample_document()
    events = write_events(tmp_path / "e.parquet", n=40)
    out = write_xml(document, events, tmp_path / "r.xml")
    root = ET.parse(out).getroot()
    assert root.tag == "complianceReport"
    assert root.get("schemaVersion") == document["schema_version"]
    assert [child.tag for child in root] == ["header", "summary", "sections", "data", "events"]

    header = root.find("header")
    assert [child.tag for child in header] == list(HEADER_FIELDS)
    assert {child.tag: read_value(child) for child in header} == document["header"]

    assert [(i.get("label"), read_value(i)) for i in root.find("summary")] == [
        (s["label"], s["value"]) for s in document["summary"]
    ]

    sections = root.find("sections").findall("section")
    assert [(s.get("id"), s.get("kind"), s.get("title")) for s in sections] == [
        (s["id"], s["kind"], s["title"]) for s in document["sections"]
    ]
    for element, section in zip(sections, document["sections"]):
        kind = section["kind"]
        if section.get("description") is not None:
            assert element.findtext("description") == section["description"]
        if kind == "facts":
            assert [(f.get("label"), read_value(f)) for f in element.findall("fact")] == [
                (f["label"], f["value"]) for f in section["facts"]
            ]
        elif kind == "table":
            assert [(c.get("key"), c.get("title")) for c in element.find("columns")] == [
                (c["key"], c["title"]) for c in section["columns"]
            ]
            rows = element.find("rows")
            assert int(rows.get("count")) == len(section["rows"])
            assert int(rows.get("totalRows")) == section["total_rows"]
            parsed = [{c.get("key"): read_value(c) for c in row} for row in rows.findall("row")]
            expected = [{c["key"]: r.get(c["key"]) for c in section["columns"]} for r in section["rows"]]
            assert parsed == expected
            if section.get("note"):
                assert element.findtext("note") == section["note"]
        elif kind == "findings":
            parsed = [
                {
                    "severity": f.get("severity"), "code": f.get("code"), "title": f.findtext("title"),
                    "detail": f.findtext("detail"),
                    "evidence_event_ids": [read_value(e) for e in f.find("evidence")],
                }
                for f in element.findall("finding")
            ]
            assert parsed == section["findings"]
        elif kind == "attestation":
            assert element.findtext("statement") == section["statement"]
            assert [f.text for f in element.find("fields")] == section["fields"]
        elif kind == "text":
            assert [p.text for p in element.findall("paragraph")] == section["paragraphs"]

    assert read_value(root.find("data")) == document["data"]

    events_el = root.find("events")
    assert int(events_el.get("count")) == 40
    parsed_events = events_el.findall("event")
    assert len(parsed_events) == 40
    names = [f.name for f in pq.read_schema(events)]
    for element, want in zip(parsed_events, sample_events(40)):
        assert [c.tag for c in element] == names
        got = {c.tag: read_value(c) for c in element}
        assert got["id"] == want["id"]
        assert got["timestamp"] == iso_millis(want["timestamp"])
        assert element.find("timestamp").get("type") == "timestamp"
        for key in ("principal_id", "action", "outcome_description", "target_resource_id", "prev_hash"):
            assert got[key] == want[key], key
        if want["details"] is not None:
            assert json.loads(got["details"]) == json.loads(want["details"])


def test_xml_escapes_instead_of_interpreting(tmp_path):
    document = sample_document()
    document["sections"][0]["facts"].append({"label": 'quote " & <tag> \n newline', "value": "]]> & <![CDATA[x]]>"})
    document["sections"][0]["facts"].append({"label": "control", "value": "bell\x07 nul\x00 cr\r end"})
    out = write_xml(document, None, tmp_path / "r.xml", include_events=False)
    raw = out.read_text(encoding="utf-8")
    assert SCRIPT not in raw and "&lt;script&gt;alert(1)&lt;/script&gt;" in raw
    root = ET.parse(out).getroot()
    assert root.find("events") is None
    facts = root.find("sections").find("section").findall("fact")
    assert facts[-2].get("label") == 'quote " & <tag> \n newline'
    assert read_value(facts[-2]) == "]]> & <![CDATA[x]]>"
    # characters XML 1.0 cannot carry become U+FFFD; CR survives parsing
    assert read_value(facts[-1]) == "bell\ufffd nul\ufffd cr\r end"
    text_section = [s for s in root.find("sections") if s.get("kind") == "text"][0]
    assert text_section.findall("paragraph")[1].text == SCRIPT


def test_xml_odd_header_names_use_field_elements(tmp_path):
    document = sample_document()
    document["header"]["not an xml name"] = "x"
    document["header"]["xmlish"] = 1
    root = ET.parse(write_xml(document, None, tmp_path / "r.xml")).getroot()
    fields = {f.get("name"): read_value(f) for f in root.find("header").findall("field")}
    assert fields == {"not an xml name": "x", "xmlish": 1}


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_xml_text = st.one_of(
    st.none(),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=10),
    st.text(alphabet="&<>\r\n\t\x00\x01\x0b\ufffe\uffff\"' ab", max_size=6),
)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(_xml_text, _xml_text, st.one_of(st.none(), st.integers(-2**63, 2**63 - 1))),
                min_size=1, max_size=5))
def test_xml_events_match_the_writer_and_parse_back(tmp_path_factory, rows):
    """The Arrow-built <events> markup equals what the element writer gives for each value."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    from compliance_reports.exporters import xml_exporter

    folder = tmp_path_factory.mktemp("xmlev")
    table = pa.table({
        "text": pa.array([r[0] for r in rows], pa.string()),
        "odd name": pa.array([r[1] for r in rows], pa.string()),
        "n": pa.array([r[2] for r in rows], pa.int64()),
    })
    pq.write_table(table, folder / "e.parquet")
    out = write_xml(sample_document(), folder / "e.parquet", folder / "r.xml")
    raw = out.read_bytes().decode("utf-8")
    events_markup = raw[raw.index("  <events count="):raw.index("</events>") + len("</events>\n")]

    expected = io.StringIO()
    w = xml_exporter._Writer(expected)
    w.depth = 1
    w.start("events", [("count", len(rows))])
    for text, odd, n in rows:
        w.start("event")
        w.value("text", text)
        w.value("field", odd, [("name", "odd name")])
        w.value("n", n)
        w.end("event")
    w.end("events")
    assert events_markup == expected.getvalue()

    parsed = [
        [xml_exporter.read_value(c) for c in event]
        for event in ET.parse(out).getroot().find("events")
    ]
    clean = xml_exporter._clean
    assert parsed == [[None if t is None else clean(t), None if o is None else clean(o), n] for t, o, n in rows]


def test_json_and_xml_carry_page_one_comparison_and_charts(engine, tmp_path):
    """A built document (golden data): its executive summary, comparison, chart data and rolled-up
    findings come back from the JSON and the XML as they are in the document."""
    from compliance_reports.reports.builder import build_report
    from compliance_reports_tests.reports.conftest import GENERATED_AT, golden_config
    from compliance_reports_tests.reports.dataset import GOLDEN, load

    load(engine, GOLDEN)
    document = build_report(engine, engine, golden_config("hipaa_audit_trail"), "2026-03-10",
                            run_id="run-1", generated_at=GENERATED_AT).document
    written = json.loads(write_json(document, tmp_path / "r.json").read_text("utf-8"))
    for key in ("executive_summary", "comparison", "charts"):
        assert written[key] == document[key]

    root = ET.parse(write_xml(document, None, tmp_path / "r.xml", False)).getroot()
    assert read_value(root.find("executiveSummary")) == document["executive_summary"]
    assert read_value(root.find("comparison")) == document["comparison"]
    assert read_value(root.find("charts")) == document["charts"]
    compared = {i.get("label"): (i.get("previous"), i.get("change"), i.get("changePct"))
                for i in root.find("summary")}
    assert compared["PHI access events"] == ("1", "13", "1300.0")
    assert compared["Integrity"] == (None, None, None)
    chart = root.find("sections/section[@id='chart_activity']")
    assert chart.get("kind") == "chart"
    section = next(s for s in document["sections"] if s["id"] == "chart_activity")
    assert chart.find("alt").text == section["alt"]
    assert read_value(chart.find("chart")) == section["chart"]
    rolled = root.find("sections/section[@id='anomalies']/finding[@code='many_patients']")
    anomalies = next(s for s in document["sections"] if s["id"] == "anomalies")["findings"]
    expected = next(f for f in anomalies if f["code"] == "many_patients")["subjects"]
    assert read_value(rolled.find("subjects")) == expected
    assert root.find("sections/section[@id='disclosures']").get("appendix") == "true"
    assert root.find("sections/section[@id='scope']").get("appendix") is None
