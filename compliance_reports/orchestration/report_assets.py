"""The four partitioned report assets (daily, weekly, monthly, quarterly compliance report)."""


import tempfile
from datetime import datetime, timezone
from pathlib import Path

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetsDefinition,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from compliance_reports.config import store as config_store
from compliance_reports.orchestration.audit_log_asset import audit_log
from compliance_reports.orchestration.report_partitions import FREQUENCIES, report_partitions
from compliance_reports.orchestration.resources import ArtifactStoreResource, ComplianceDatabase
from compliance_reports.orchestration.transient_retries import retry_transient
from compliance_reports.periods import period_has_ended, period_window, validate_period_key
from compliance_reports.reports.checks import check_integrity, check_totals, check_window
from compliance_reports.reports.run import build_and_store, markdown_summary, report_metadata
from compliance_reports.scheduling import run_tags


def _trigger(tags: dict[str, str]) -> str:
    if "trigger" in tags:
        return tags["trigger"]
    return "backfill" if "dagster/backfill" in tags else "manual"


CHECKS = {
    "window_matches_partition": "The document's window is the partition's period in the report's timezone.",
    "totals_reconcile": "Per-status counts recounted independently sum to the document's event count.",
    "integrity_verdict": "The audit log's hash chain verifies for the window (BROKEN is an error).",
}


def build_report_asset(frequency: str) -> AssetsDefinition:
    name = f"{frequency}_compliance_report"

    @asset(
        name=name,
        check_specs=[AssetCheckSpec(check, asset=name, description=text) for check, text in CHECKS.items()],
        partitions_def=report_partitions[frequency],
        deps=[audit_log.key],
        group_name="compliance_reports",
        owners=["team:compliance"],
        kinds={"python", "sql"},
        description=(
            f"The {frequency} compliance report of one report configuration for one period "
            "(HIPAA, GDPR, general, integrity or custom), computed in the audit database."
        ),
    )
    def _report(
        context: AssetExecutionContext,
        compliance_db: ComplianceDatabase,
        artifact_store: ArtifactStoreResource,
    ) -> MaterializeResult:
        # Outages of the databases or the artifact store are retried with backoff; bad input
        # (Failure with allow_retries=False below) and other errors fail the run at once.
        with retry_transient(context):
            return _materialize(context, frequency, compliance_db, artifact_store)

    return _report


def _materialize(
    context: AssetExecutionContext,
    frequency: str,
    compliance_db: ComplianceDatabase,
    artifact_store: ArtifactStoreResource,
) -> MaterializeResult:
    keys = context.partition_key.keys_by_dimension
    period, report_id = keys["period"], keys["report"]
    try:
        report = compliance_db.load_report(report_id)
    except config_store.NotFoundError as exc:
        raise Failure(f"{exc}: apply its configuration before running it", allow_retries=False) from None
    if report.frequency != frequency:
        raise Failure(
            f"report {report_id} is {report.frequency}, not {frequency}: run it through "
            f"{report.frequency}_compliance_report",
            allow_retries=False,
        )
    try:
        validate_period_key(period, frequency)
    except ValueError as exc:
        raise Failure(f"period {period!r}: {exc}", allow_retries=False) from None
    tz = report.schedule.timezone
    now = datetime.now(timezone.utc)
    if not period_has_ended(period, frequency, tz, now):
        window = period_window(period, frequency, tz)
        raise Failure(
            f"period {period} of report {report_id} has not ended in {tz}: it ends at "
            f"{window.end_local.isoformat()} ({window.end_utc.isoformat()}); "
            "request it after that",
            allow_retries=False,
        )
    run = context.run
    tags = run_tags(report_id, report.organization_id, frequency, period, _trigger(dict(run.tags)))
    missing = {k: v for k, v in tags.items() if run.tags.get(k) != v and k not in run.tags}
    if missing:
        context.instance.add_run_tags(context.run_id, missing)

    with tempfile.TemporaryDirectory(prefix="report-") as scratch:
        stored = build_and_store(
            audit_engine=compliance_db.audit_engine(),
            app_engine=compliance_db.app_engine(),
            store=artifact_store.store(),
            report=report,
            period=period,
            run_id=context.run_id,
            generated_at=now,
            scratch=Path(scratch),
            checkpoint_key=artifact_store.checkpoint_key(),
        )
        integrity = stored.build.integrity
        outcomes = [
            check_window(stored.document, report, period),
            check_totals(compliance_db.audit_engine(), report, period, stored.document, stored.build.events_path),
            check_integrity(stored.build.integrity_verdict, integrity.reason if integrity else None),
        ]
    context.log.info(
        f"{report_id} {period}: {stored.build.event_count} events, "
        f"integrity {stored.build.integrity_verdict}, stored at {stored.document_location}"
    )
    metadata = report_metadata(stored)
    metadata["summary"] = MetadataValue.md(markdown_summary(stored))
    # Checks never block: a BROKEN chain is itself the finding to deliver.
    check_results = [
        AssetCheckResult(
            check_name=o.name,
            passed=o.passed,
            severity=AssetCheckSeverity.ERROR if o.severity == "error" else AssetCheckSeverity.WARN,
            description=o.description,
            metadata=o.metadata,
        )
        for o in outcomes
    ]
    return MaterializeResult(metadata=metadata, check_results=check_results)


report_assets: dict[str, AssetsDefinition] = {f: build_report_asset(f) for f in FREQUENCIES}
