"""One report run: build the document, store it with its event rows, describe it.

Plain Python called by the report assets; the artifact store layout is
organization / report id / period / run id / files. The integrity checkpoint a verified window
signs is stored by ``commit_checkpoint``, which the asset calls as its last step, so a run that
fails anywhere before (storing, checking) leaves no checkpoint behind.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from compliance_reports.audit.integrity import commit_checkpoint as _commit
from compliance_reports.config.models import ReportConfig
from compliance_reports.reports.builder import BuildResult, build_report
from compliance_reports.reports.document import canonical_json, document_sha256

DOCUMENT_FILENAME = "report.json"
EVENTS_FILENAME = "events.parquet"


@dataclass(frozen=True)
class StoredReport:
    report: ReportConfig
    period: str
    run_id: str
    build: BuildResult
    document_location: str
    events_location: str | None
    document_sha256: str

    @property
    def document(self) -> dict[str, Any]:
        return self.build.document


def build_and_store(
    *,
    audit_engine: Engine,
    app_engine: Engine,
    store,
    report: ReportConfig,
    period: str,
    run_id: str,
    generated_at: datetime,
    scratch: Path,
    checkpoint_key: bytes | None,
) -> StoredReport:
    events_path = scratch / EVENTS_FILENAME
    build = build_report(
        audit_engine,
        app_engine,
        report,
        period,
        run_id=run_id,
        generated_at=generated_at,
        events_path=events_path,
        checkpoint_key=checkpoint_key,
        sign_checkpoint=True,
    )
    parts = (report.organization_id, report.id, period, run_id)
    document_file = scratch / DOCUMENT_FILENAME
    document_file.write_bytes(canonical_json(build.document))
    document_location = store.put_file((*parts, DOCUMENT_FILENAME), document_file)
    events_location = None
    if build.events_path is not None and Path(build.events_path).exists():
        events_location = store.put_file((*parts, EVENTS_FILENAME), Path(build.events_path))
    return StoredReport(
        report=report,
        period=period,
        run_id=run_id,
        build=build,
        document_location=document_location,
        events_location=events_location,
        document_sha256=document_sha256(build.document),
    )


def commit_checkpoint(app_engine: Engine, stored: StoredReport) -> int | None:
    """Store the checkpoint the run signed (if any); returns its id."""
    return _commit(app_engine, stored.build.integrity)


def report_metadata(stored: StoredReport) -> dict[str, Any]:
    """Plain metadata values for the materialization (the asset wraps the Markdown and paths)."""
    header = stored.document["header"]
    coverage = stored.document["data"].get("coverage") or {}
    meta: dict[str, Any] = {
        "report_id": stored.report.id,
        "organization_id": stored.report.organization_id,
        "report_type": stored.report.report_type,
        "period": stored.period,
        "timezone": header["timezone"],
        "window_local": f"{header['window_start_local']} to {header['window_end_local']}",
        "window_utc": f"{header['window_start_utc']} to {header['window_end_utc']}",
        "window_hours": float(header["window_hours"]),
        "event_count": int(stored.build.event_count),
        "events_sha256": stored.build.events_sha256,
        "document_sha256": stored.document_sha256,
        "integrity_verdict": stored.build.integrity_verdict or "n/a",
        "coverage": coverage.get("status", "n/a"),
        "coverage_findings": len(coverage.get("findings", [])),
        "duration_s": round(float(stored.build.duration_s), 3),
        "document_location": stored.document_location,
    }
    if stored.events_location:
        meta["events_location"] = stored.events_location
    for item in stored.document.get("summary", []):
        value = item.get("value")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            meta[f"summary/{item['label']}"] = value
    return meta


def markdown_summary(stored: StoredReport) -> str:
    header = stored.document["header"]
    lines = [
        f"### {header['report_name']} ({stored.period})",
        "",
        f"- Organization: `{header['organization_id']}`; type `{header['report_type']}`",
        f"- Window ({header['timezone']}): {header['window_start_local']} to {header['window_end_local']}",
        f"- Window (UTC): {header['window_start_utc']} to {header['window_end_utc']}"
        + (f" ({header['window_note']})" if header.get("window_note") else ""),
        f"- Events: {stored.build.event_count:,}; integrity: **{stored.build.integrity_verdict or 'n/a'}**",
        f"- Coverage: {_coverage_line(stored.document['data'].get('coverage'))}",
        f"- Document sha256: `{stored.document_sha256}`",
    ]
    summary = stored.document.get("summary", [])
    if summary:
        lines += ["", "| Figure | Value |", "| --- | --- |"]
        lines += [f"| {_md(item['label'])} | {_md(item['value'])} |" for item in summary]
    return "\n".join(lines)


def _coverage_line(coverage: dict[str, Any] | None) -> str:
    if not coverage:
        return "n/a"
    silence = coverage.get("longest_silence") or {}
    line = f"**{coverage['status']}**, longest silence {silence.get('hours')} h"
    findings = coverage.get("findings") or []
    if findings:
        line += "; " + "; ".join(_md(f["title"]) for f in findings[:3])
        if len(findings) > 3:
            line += f" (and {len(findings) - 3} more)"
    return line


def _md(value: Any) -> str:
    return str(value).replace("|", "\\|").replace("\n", " ")
