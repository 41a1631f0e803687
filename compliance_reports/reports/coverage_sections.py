"""The coverage part every report type carries: the ``coverage`` facts, the
``coverage_findings`` section and two summary figures, rendered from ``audit.coverage``.

Kept apart from ``common`` (shared query helpers) because the builder adds it to every type
itself: the type modules do not need to know about it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from compliance_reports.audit.coverage import Coverage
from compliance_reports.reports import document as rd
from compliance_reports.reports.common import event_time, iso_utc

STATUS_TEXT = {"complete": "complete", "partial": "partial", "no_data": "no events"}
RANGES_SHOWN = 10

DESCRIPTION = (
    "Counted on every event of the organization in the window, whatever the report's criteria. "
    "A silence runs between two consecutive events, from the window's start to the first event, "
    "or from the last event to the window's end. The window is partly covered when the "
    "organization's log begins inside it (no earlier event) or ends inside it (no later event "
    "and the last one more than the silence limit before the end).")
FINDINGS_DESCRIPTION = (
    "Partial coverage and silences longer than options.max_silence_hours (warnings): a gap in "
    "an audit log is a finding to review even when the hash chain verifies.")


def _minutes(coverage: Coverage, ts: datetime) -> str:
    return ts.astimezone(coverage.zone).strftime("%Y-%m-%d %H:%M")


def coverage_sections(coverage: Coverage) -> list[dict]:
    unit = "Hours" if coverage.unit == "hour" else "Days"
    ranges = coverage.empty_ranges()
    shown = [f"{_minutes(coverage, s)} to {_minutes(coverage, e)} ({n} {coverage.unit}"
             f"{'' if n == 1 else 's'})"
             for s, e, n in ranges[:RANGES_SHOWN]]
    if len(ranges) > len(shown):
        shown.append(f"and {len(ranges) - len(shown)} more (data.coverage.without_events)")
    covered = coverage.covered
    silence = coverage.longest_silence
    first, last = coverage.first_event, coverage.last_event
    items: list[tuple[str, Any]] = [
        ("Coverage", STATUS_TEXT[coverage.status]),
        ("Covers the whole window", coverage.covers_whole_window),
        ("Covered (local)", f"{coverage.local(covered[0])} to {coverage.local(covered[1])}"
         if covered else None),
        ("Events of the organization in the window", coverage.events),
        ("First event", first[0] if first else None),
        ("First event (UTC)", event_time(first[1]) if first else None),
        ("Last event", last[0] if last else None),
        ("Last event (UTC)", event_time(last[1]) if last else None),
        ("Earlier events of the organization", coverage.log_starts_before),
        ("Later events of the organization", coverage.log_continues_after),
        (f"{unit} in the window", len(coverage.units)),
        (f"{unit} without events", len(coverage.empty_units)),
        ("Without events (local)", "; ".join(shown) or "none"),
        ("Longest silence (hours)", silence.hours if silence else None),
        ("Longest silence (local)", f"{coverage.local(silence.start_utc)} to "
         f"{coverage.local(silence.end_utc)}" if silence else None),
        ("Silence limit (hours)", coverage.max_silence_hours),
        ("Silences longer than the limit", coverage.long_silences_total),
    ]
    if coverage.measured_end_utc < coverage.end_utc:
        items.append(("Measured until (UTC)", iso_utc(coverage.measured_end_utc)))
    findings = _findings(coverage)
    return [
        rd.facts("coverage", "Audit-log coverage", items, description=DESCRIPTION),
        rd.findings("coverage_findings", "Coverage findings", findings,
                    description=FINDINGS_DESCRIPTION),
    ]


def _findings(coverage: Coverage) -> list[dict]:
    """The coverage findings, each long silence marked with its time range and hours so that
    ``rollup`` shows them as one rule with a table, and the "more" note counted into it."""
    rule = f"Silences longer than {coverage.max_silence_hours} hours"
    silences = iter(coverage.long_silences)
    out = []
    for f in coverage.findings:
        if f["code"] != "coverage_silence":
            out.append(rd.finding(f["severity"], f["code"], f["title"], f["detail"],
                                  f["evidence_event_ids"]))
            continue
        silence = next(silences, None)
        if silence is None:  # the note of silences not listed
            out.append(rd.finding(f["severity"], "coverage_silence_more", f["title"], f["detail"],
                                  [], measure=coverage.long_silences_total - len(coverage.long_silences)))
            continue
        out.append(rd.finding(
            f["severity"], f["code"], f["title"], f["detail"], f["evidence_event_ids"],
            subject=f"{_minutes(coverage, silence.start_utc)} to {_minutes(coverage, silence.end_utc)}",
            measure=silence.hours, rule=rule))
    return out


def coverage_summary(coverage: Coverage) -> list[tuple[str, Any]]:
    silence = coverage.longest_silence
    return [("Coverage", STATUS_TEXT[coverage.status]),
            ("Longest silence (hours)", silence.hours if silence else None)]
