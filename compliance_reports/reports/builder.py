"""Build one report document for one period: the entry point of report generation.

Order of work, all on one audit connection (one REPEATABLE READ snapshot on PostgreSQL):
1. one streaming pass over every row of the organization in the window (``event_stream``):
   hash chain check for the integrity result, and for the rows matching the criteria the
   event count, ``events_sha256`` and, when asked, the Parquet export;
2. the window's coverage by the organization's log (``coverage.measure_coverage``, in SQL):
   first and last event, hours (daily) or days without events, the longest silence, partial
   coverage; added to every report type as the ``coverage`` sections, ``data.coverage`` and
   two summary figures;
3. the integrity verdict (``integrity.evaluate``): checkpoint comparison and, with
   ``sign_checkpoint``, a new signed checkpoint that the caller stores only once the report
   has been stored (``integrity.commit_checkpoint``): nothing here writes to the database;
4. the type-specific sections, aggregated in SQL;
5. the previous period's headline figures (``comparison``, one aggregate statement) and the
   charts' data (``charts``, one grouped statement for the time series);
6. the document: header (``report_document.HEADER_FIELDS``), summary with its comparison,
   sections in reading order (``layout``: findings rolled up one per rule, charts, analysis,
   attestation, appendices), data, and page 1 (``executive_summary``), checked with
   ``report_document.validate_document``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import Engine

from compliance_reports.audit.action_categories import resolve_categories
from compliance_reports.audit.coverage import measure_coverage
from compliance_reports.audit.event_stream import Redactor, snapshot_connection
from compliance_reports.audit.integrity import IntegrityResult, evaluate, run_pass
from compliance_reports.config.models import ReportConfig
from compliance_reports.db.schema import audit_log
from compliance_reports.periods import Window, period_window
from compliance_reports.reports import custom
from compliance_reports.reports import document as rd
from compliance_reports.reports import executive_summary, gdpr, general, hipaa, integrity_report
from compliance_reports.reports.charts import report_charts
from compliance_reports.reports.comparison import annotate_summary, compare
from compliance_reports.reports.layout import arrange
from compliance_reports.reports.common import (
    ReportContext,
    criteria_condition,
    iso_utc,
    number,
    window_note,
)
from compliance_reports.reports.coverage_sections import coverage_sections, coverage_summary
from compliance_reports.reports.types import Body

GENERATOR_VERSION = "compliance_reports 0.1.0"

BUILDERS: dict[str, Callable[[ReportContext], Body]] = {
    "general_compliance": general.build,
    "hipaa_audit_trail": hipaa.build,
    "gdpr_processing_activities": gdpr.build,
    "integrity_verification": integrity_report.build,
    "custom": custom.build,
}


@dataclass
class BuildResult:
    document: dict                   # passes report_document.validate_document
    event_count: int
    events_sha256: str
    events_path: Path | None         # Parquet file written when requested
    integrity_verdict: str | None    # VERIFIED | BROKEN | INCOMPLETE | NO_DATA
    duration_s: float
    integrity: IntegrityResult | None = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase


def build_report(
    audit_engine: Engine,
    app_engine: Engine,
    report: ReportConfig,
    period_key: str,
    *,
    run_id: str | None,
    generated_at: datetime,
    events_path: Path | None = None,
    checkpoint_key: bytes | None = None,
    sign_checkpoint: bool = False,
) -> BuildResult:
    """The report of ``report`` for the period ``period_key`` (its local start date).

    With ``sign_checkpoint`` the result's ``integrity.pending_checkpoint`` holds the signed
    checkpoint of a verified window; the caller stores it with ``commit_checkpoint`` as the
    last step of a successful run."""
    window = period_window(period_key, report.frequency, report.schedule.timezone)
    return build_report_for_window(
        audit_engine, app_engine, report, window, run_id=run_id, generated_at=generated_at,
        events_path=events_path, checkpoint_key=checkpoint_key, sign_checkpoint=sign_checkpoint,
    )


def build_report_for_window(
    audit_engine: Engine,
    app_engine: Engine,
    report: ReportConfig,
    window: Window,
    *,
    run_id: str | None,
    generated_at: datetime,
    events_path: Path | None = None,
    checkpoint_key: bytes | None = None,
    sign_checkpoint: bool = False,
) -> BuildResult:
    """Same as ``build_report`` with an explicit window (start_utc, end_utc, timezone)."""
    if not isinstance(generated_at, datetime) or generated_at.tzinfo is None:
        raise ValueError("generated_at must be a timezone-aware datetime")
    builder = BUILDERS.get(report.report_type)
    if builder is None:
        raise ValueError(f"unknown report_type {report.report_type!r}")
    categories = resolve_categories(report.options.action_categories)
    redactor = Redactor(checkpoint_key) if report.export.redact_identifiers else None
    criteria = report.criteria
    events_path = Path(events_path) if events_path is not None else None
    timings: dict[str, float] = {}
    started = time.perf_counter()

    with snapshot_connection(audit_engine) as conn:
        t = time.perf_counter()
        seed, stream = run_pass(
            conn, report.organization_id, window.start_utc, window.end_utc,
            criteria_condition=criteria_condition(audit_log, criteria),
            verified_only=criteria.verified_only,
            events_path=events_path,
            redactor=redactor,
            sample_limit=report.options.pdf_event_limit if report.report_type == "custom" else 0,
        )
        timings["stream"] = time.perf_counter() - t
        t = time.perf_counter()
        coverage = measure_coverage(
            conn, report.organization_id, window.start_utc, window.end_utc,
            timezone_name=window.timezone, max_silence_hours=report.options.max_silence_hours,
            now=generated_at, unit="hour" if window.frequency == "daily" else "day",
        )
        timings["coverage"] = time.perf_counter() - t
        t = time.perf_counter()
        integrity = evaluate(
            conn, app_engine, report.organization_id, window.start_utc, window.end_utc, seed,
            stream, key=checkpoint_key, sign_checkpoint=sign_checkpoint, now=generated_at,
            coverage=coverage,
        )
        timings["integrity"] = time.perf_counter() - t
        ctx = ReportContext(conn=conn, app_engine=app_engine, report=report, window=window,
                            categories=categories, stream=stream, integrity=integrity,
                            generated_at=generated_at, redactor=redactor)
        if criteria.verified_only:
            note = (f"verified_only: {stream.excluded_unverified} event(s) whose stored hash is "
                    "missing or does not match the recomputed hash were left out while streaming "
                    "(in Python, the database cannot compute the hash); the aggregates leave out "
                    "the same rows (rows without a hash in SQL, mismatched rows by id).")
            if not stream.unverified_ids_complete:
                note += (" More mismatched rows were found than can be excluded by id, so some "
                         "aggregates may still include them.")
            ctx.scope_notes.append(note)
        if redactor is not None:
            ctx.scope_notes.append(
                f"Principal, resource and patient identifiers are pseudonymised ({redactor.method}), "
                "in this document and in the exported event rows alike; exported rows carry no "
                "details.")
        t = time.perf_counter()
        body = builder(ctx)
        timings["sections"] = time.perf_counter() - t
        t = time.perf_counter()
        summary = [*body.summary, *coverage_summary(coverage)]
        comparison = compare(ctx, summary)
        charts = report_charts(ctx)
        ctx.close()
        timings["comparison_and_charts"] = time.perf_counter() - t

    header = {
        "organization_id": report.organization_id,
        "report_id": report.id,
        "report_name": report.name,
        "report_type": report.report_type,
        "frequency": window.frequency,
        "period": window.period_key,
        "timezone": window.timezone,
        "window_start_local": window.start_local.isoformat(),
        "window_end_local": window.end_local.isoformat(),
        "window_start_utc": iso_utc(window.start_utc),
        "window_end_utc": iso_utc(window.end_utc),
        "window_hours": number(round(window.hours, 4)),
        "window_note": window_note(window),
        "generated_at": iso_utc(generated_at),
        "generator_version": GENERATOR_VERSION,
        "run_id": run_id,
        "criteria": criteria.model_dump(mode="json"),
        "event_count": stream.event_count,
        "events_sha256": stream.events_sha256,
    }
    data: dict[str, Any] = {
        "events": {
            "count": stream.event_count,
            "sha256": stream.events_sha256,
            "rows_in_window": stream.rows_scanned,
            "excluded_unverified": stream.excluded_unverified,
            "canonical_row": "event_stream.canonical_line: sorted-key compact JSON per event, LF",
            "redacted": redactor is not None,
        },
        **body.data,
        "coverage": coverage.to_dict(),
    }
    # Coverage belongs to every report type: right after the scope, before the type's content.
    sections = list(body.sections)
    at = next((i + 1 for i, s in enumerate(sections) if s["id"] == "scope"), 0)
    sections[at:at] = coverage_sections(coverage)
    summary_items = [{"label": label, "value": value} for label, value in summary]
    annotate_summary(summary_items, comparison)
    document = {
        "schema_version": rd.SCHEMA_VERSION,
        "header": header,
        "summary": summary_items,
        "comparison": comparison,
        "charts": [{"id": s["id"], "title": s["title"], "alt": s["alt"]} for s in charts],
        "sections": arrange([*charts, *sections]),
        "data": data,
    }
    document["executive_summary"] = executive_summary.build(
        document, verdict=integrity.verdict, reason=integrity.reason,
        coverage_text=coverage.describe())
    rd.validate_document(document)
    duration = time.perf_counter() - started
    timings["total"] = duration
    return BuildResult(
        document=document,
        event_count=stream.event_count,
        events_sha256=stream.events_sha256,
        events_path=events_path if events_path is not None and events_path.exists() else None,
        integrity_verdict=integrity.verdict,
        duration_s=duration,
        integrity=integrity,
        timings=timings,
    )
