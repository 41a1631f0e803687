"""Custom extract: the events matching the report's criteria. The document holds the facts and
the first ``options.pdf_event_limit`` events; the full extract is the event export (Parquet,
CSV) whose SHA-256 is ``header.events_sha256``."""

from __future__ import annotations

from compliance_reports.reports import document as rd
from compliance_reports.reports.common import (
    ReportContext,
    describe_criteria,
    event_time,
    integrity_facts_section,
    integrity_summary,
    iso_utc,
    scope_section,
)
from compliance_reports.reports.types import Body

COLUMNS = [
    ("id", "Event"), ("time_utc", "Time (UTC)"), ("principal_id", "Principal"),
    ("action", "Action"), ("target_resource_type", "Resource type"),
    ("target_resource_id", "Resource"), ("status", "Status"),
    ("data_classification", "Classification"), ("outcome_description", "Outcome"),
]


def build(ctx: ReportContext) -> Body:
    stream = ctx.stream
    limit = ctx.options.pdf_event_limit
    rows = [
        {"id": r["id"], "time_utc": event_time(r["timestamp"]), "principal_id": r["principal_id"],
         "action": r["action"], "target_resource_type": r["target_resource_type"],
         "target_resource_id": r["target_resource_id"], "status": r["status"],
         "data_classification": r["data_classification"],
         "outcome_description": r["outcome_description"]}
        for r in stream.sample[:limit]
    ]
    note = None
    if stream.event_count > len(rows):
        note = (f"The first {len(rows)} of {stream.event_count} events are shown; the complete "
                "extract is in the CSV/Parquet export of this report (SHA-256 of its canonical "
                f"rows: {stream.events_sha256}).")
    redacted = ctx.report.export.redact_identifiers
    sections = [
        scope_section(ctx),
        rd.facts("extract", "Extract", [
            ("Events", stream.event_count),
            ("Window (UTC)", f"{iso_utc(ctx.window.start_utc)} to {iso_utc(ctx.window.end_utc)}"),
            ("Criteria", describe_criteria(ctx.report.criteria)),
            ("Events SHA-256", stream.events_sha256),
            ("Identifiers", "pseudonymised" if redacted else "as recorded"),
        ]),
        rd.appendix(rd.table(
            "events", "Events", COLUMNS, rows, total_rows=stream.event_count, note=note,
            description=("Principal and resource identifiers are pseudonyms "
                         "(export.redact_identifiers)." if redacted else None))),
        integrity_facts_section(ctx),
    ]
    summary = [("Events", stream.event_count), ("Integrity", ctx.integrity.verdict)]
    data = {
        "event_count": stream.event_count,
        "events_sha256": stream.events_sha256,
        "shown": len(rows),
        "redacted": redacted,
        "integrity": integrity_summary(ctx.integrity),
    }
    return Body(summary=summary, sections=sections, data=data)
