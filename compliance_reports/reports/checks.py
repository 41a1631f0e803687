"""Checks of a produced report, recomputed independently of the builder.

- window: the document's window is the partition's period in the report's own timezone;
- totals: per-status counts, recounted in the audit database (or in the stored event file
  when `verified_only` filters rows in Python), sum to the document's event count;
- integrity: the hash-chain verdict (BROKEN is an error; INCOMPLETE and NO_DATA, a window
  with no audit rows where nothing was verified, are warnings: neither passes);
- coverage: the organization's log covers the window without a silence longer than
  options.max_silence_hours (a warning otherwise, naming each coverage finding).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, and_, func, select

from compliance_reports.config.models import ReportConfig
from compliance_reports.db.schema import audit_log
from compliance_reports.periods import period_window
from compliance_reports.reports.common import criteria_condition


@dataclass(frozen=True)
class CheckOutcome:
    name: str
    passed: bool
    severity: str  # error | warn
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)


def check_window(document: dict[str, Any], report: ReportConfig, period: str) -> CheckOutcome:
    header = document["header"]
    window = period_window(period, report.frequency, report.schedule.timezone)
    expected = {
        "window_start_utc": window.start_utc,
        "window_end_utc": window.end_utc,
        "timezone": report.schedule.timezone,
        "period": period,
    }
    mismatches = []
    for key, value in expected.items():
        found = header.get(key)
        if key.endswith("_utc"):
            from datetime import datetime

            same = found is not None and datetime.fromisoformat(found.replace("Z", "+00:00")) == value
        else:
            same = found == value
        if not same:
            mismatches.append(f"{key}: document {found!r}, expected {value!s}")
    return CheckOutcome(
        "window_matches_partition",
        not mismatches,
        "error",
        "the window is the partition's period in the report's timezone"
        if not mismatches else "; ".join(mismatches),
        {"window_utc": f"{window.start_utc.isoformat()} to {window.end_utc.isoformat()}",
         "window_hours": window.hours},
    )


def check_totals(
    audit_engine: Engine, report: ReportConfig, period: str, document: dict[str, Any], events_path: Path | None
) -> CheckOutcome:
    expected = int(document["header"]["event_count"])
    if report.criteria.verified_only:
        if events_path is None or not Path(events_path).exists():
            return CheckOutcome("totals_reconcile", False, "warn",
                                "verified_only report without a stored event file: cannot recount")
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        counts = pc.value_counts(pq.read_table(events_path, columns=["status"])["status"]).to_pylist()
        by_status = {c["values"]: c["counts"] for c in counts}
        source = "stored event file"
    else:
        window = period_window(period, report.frequency, report.schedule.timezone)
        conditions = [
            audit_log.c.organization_id == report.organization_id,
            audit_log.c.timestamp >= window.start_utc,
            audit_log.c.timestamp < window.end_utc,
        ]
        extra = criteria_condition(audit_log, report.criteria)
        if extra is not None:
            conditions.append(extra)
        query = select(audit_log.c.status, func.count()).where(and_(*conditions)).group_by(audit_log.c.status)
        with audit_engine.connect() as conn:
            by_status = {status: int(n) for status, n in conn.execute(query)}
        source = "audit database"
    total = sum(by_status.values())
    passed = total == expected
    return CheckOutcome(
        "totals_reconcile",
        passed,
        "error",
        f"per-status counts from the {source} sum to the document's {expected} events"
        if passed else f"per-status counts from the {source} sum to {total}, the document says {expected}",
        {"by_status": {str(k): v for k, v in sorted(by_status.items(), key=lambda kv: str(kv[0]))},
         "recounted_total": total, "document_total": expected},
    )


def check_integrity(
    verdict: str | None, reason: str | None = None, coverage: dict[str, Any] | None = None
) -> CheckOutcome:
    verdict = verdict or "INCOMPLETE"
    metadata: dict[str, Any] = {"verdict": verdict}
    if coverage:
        metadata["coverage"] = coverage["status"]
        metadata["coverage_findings"] = len(coverage["findings"])
    if verdict == "VERIFIED":
        note = "" if not coverage or not coverage["findings"] else (
            f"; coverage {coverage['status']} with {len(coverage['findings'])} finding(s), "
            "see log_coverage")
        return CheckOutcome("integrity_verdict", True, "error", "hash chain verified" + note, metadata)
    severity = "error" if verdict == "BROKEN" else "warn"
    return CheckOutcome("integrity_verdict", False, severity, f"{verdict}: {reason or 'see the report'}",
                        metadata)


def check_coverage(document: dict[str, Any]) -> CheckOutcome:
    coverage = document["data"].get("coverage")
    if not coverage:
        return CheckOutcome("log_coverage", False, "warn", "the document carries no coverage")
    silence = coverage.get("longest_silence") or {}
    metadata = {
        "status": coverage["status"],
        "events": coverage["events"],
        "first_event_utc": (coverage.get("first_event") or {}).get("time_utc"),
        "last_event_utc": (coverage.get("last_event") or {}).get("time_utc"),
        f"{coverage['unit']}s_without_events": coverage["units_without_events"],
        "longest_silence_hours": silence.get("hours"),
        "max_silence_hours": coverage["max_silence_hours"],
    }
    metadata = {k: v for k, v in metadata.items() if v is not None}
    findings = coverage["findings"]
    if not findings:
        return CheckOutcome(
            "log_coverage", True, "warn",
            f"the log covers the window; longest silence {silence.get('hours')} h "
            f"(limit {coverage['max_silence_hours']} h)", metadata)
    return CheckOutcome("log_coverage", False, "warn",
                        "; ".join(f"{f['title']}: {f['detail']}" for f in findings), metadata)
