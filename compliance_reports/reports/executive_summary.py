"""Page 1 of every report: the executive summary, built from the finished document.

It holds nothing the document does not already say; it selects and counts:
- the period as a reader names it (``periods.human_period_label``) with its timezone;
- the headline figures: the summary items, each with its change against the previous period
  (``comparison``), the integrity and coverage items left out because they have their own line;
- the integrity verdict with its reason, and the coverage verdict in one sentence;
- the findings counted by severity (one per rule, after ``rollup``) and the top ones, most
  severe first, in one line each;
- where the details are: the findings sections, the charts, every appendix, the event export.
"""

from __future__ import annotations

from typing import Any

from compliance_reports.periods import human_period_label
from compliance_reports.reports.document import SEVERITIES

TOP_FINDINGS = 5
VERDICT_LABELS = {"Integrity", "Verdict", "Coverage", "Longest silence (hours)"}


def _finding_line(item: dict[str, Any], section_id: str) -> dict[str, Any]:
    title = item.get("title") or item.get("code")
    subjects = item.get("subjects")
    if subjects:
        title = f"{title}: {subjects['total']} principals or resources"
    return {"severity": item["severity"], "code": item["code"], "title": title,
            "section_id": section_id}


def _where(section: dict[str, Any]) -> str:
    kind = section.get("kind")
    if kind == "findings":
        n = len(section.get("findings") or [])
        return f"{n} finding{'' if n == 1 else 's'}, each with its evidence event ids"
    if kind == "chart":
        return "charts of the period"
    rows = len(section.get("rows") or [])
    total = section.get("total_rows", rows)
    if section.get("complete"):
        return f"the complete list, {rows:,} rows"
    if total > rows:
        return f"the first {rows:,} of {total:,} rows; all of them in the event export"
    return f"{rows:,} rows"


def build(document: dict[str, Any], *, verdict: str | None, reason: str | None,
          coverage_text: str) -> dict[str, Any]:
    header = document["header"]
    sections = document["sections"]
    headline = [dict(item) for item in document["summary"] if item["label"] not in VERDICT_LABELS]
    coverage = document["data"].get("coverage") or {}
    counts = {severity: 0 for severity in SEVERITIES}
    lines = []
    for section in sections:
        if section.get("kind") != "findings":
            continue
        for item in section.get("findings") or []:
            counts[item["severity"]] += 1
            lines.append(_finding_line(item, section["id"]))
    lines.sort(key=lambda line: SEVERITIES.index(line["severity"]))
    details = []
    for section in sections:
        if section.get("kind") == "findings" and section.get("findings"):
            details.append({"section_id": section["id"], "title": section["title"],
                            "what": _where(section)})
    charts = [s for s in sections if s.get("kind") == "chart"]
    if charts:
        details.append({"section_id": charts[0]["id"], "title": "Charts",
                        "what": f"{len(charts)} chart{'' if len(charts) == 1 else 's'} of the period"})
    for section in sections:
        if section.get("appendix") and (section.get("kind") != "table" or section.get("rows")):
            details.append({"section_id": section["id"], "title": section["title"],
                            "what": _where(section)})
    details.append({"section_id": None, "title": "Event rows",
                    "what": (f"all {header['event_count']:,} events in the event export of this "
                             f"report, SHA-256 of its canonical rows {header['events_sha256']}")})
    silence = coverage.get("longest_silence") or {}
    return {
        "period_label": human_period_label(header["period"], header["frequency"]),
        "timezone": header["timezone"],
        "window_local": f"{header['window_start_local']} to {header['window_end_local']}",
        "window_utc": f"{header['window_start_utc']} to {header['window_end_utc']}",
        "headline": headline,
        "integrity": {"verdict": verdict, "reason": reason},
        "coverage": {"status": coverage.get("status"), "text": coverage_text,
                     "longest_silence_hours": silence.get("hours"),
                     "findings": len(coverage.get("findings") or [])},
        "findings": {**counts, "total": sum(counts.values()), "top": lines[:TOP_FINDINGS]},
        "details": details,
    }
