"""The four partitioned report assets (daily, weekly, monthly, quarterly compliance report)."""


import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from dagster import (
    AssetCheckEvaluation,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetsDefinition,
    Failure,
    MaterializeResult,
    asset,
)

from compliance_reports.audit.event_stream import Redactor
from compliance_reports.config import store as config_store
from compliance_reports.config.models import ReportConfig
from compliance_reports.orchestration.audit_log_asset import audit_log
from compliance_reports.orchestration.dagster_runs import REFUSED_TAG
from compliance_reports.orchestration.report_metadata import report_materialization_metadata
from compliance_reports.orchestration.report_partitions import FREQUENCIES, report_partitions
from compliance_reports.orchestration.resources import ArtifactStoreResource, ComplianceDatabase
from compliance_reports.orchestration.transient_retries import retry_transient
from compliance_reports.reports.checks import (
    check_coverage,
    check_integrity,
    check_totals,
    check_window,
)
from compliance_reports.reports.run import build_and_store, commit_checkpoint
from compliance_reports.scheduling import PeriodRefused, check_requested_period, report_run_tags


def _trigger(tags: dict[str, str]) -> str:
    if "trigger" in tags:
        return tags["trigger"]
    return "backfill" if "dagster/backfill" in tags else "manual"


CHECKS = {
    "window_matches_partition": "The document's window is the partition's period in the report's timezone.",
    "totals_reconcile": "Per-status counts recounted independently sum to the document's event count.",
    "integrity_verdict": ("The audit log's hash chain verifies for the window (BROKEN is an error; "
                          "INCOMPLETE and NO_DATA, no rows in the window, are warnings)."),
    "log_coverage": ("The organization's audit log covers the whole window without a silence longer "
                     "than options.max_silence_hours (a warning otherwise)."),
}


def build_report_asset(frequency: str) -> AssetsDefinition:
    """The report asset of one frequency."""
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
    run = context.run
    # A run launched outside the named job (the UI's asset page) lacks the job's frequency tag.
    tags = {**report_run_tags(report.organization_id, _trigger(dict(run.tags))), "frequency": frequency}
    missing = {k: v for k, v in tags.items() if k not in run.tags}
    now = datetime.now(timezone.utc)
    try:
        check_requested_period(period, frequency, report.schedule.timezone, now)
    except PeriodRefused as exc:
        # Reached from a UI launch or backfill (the CLI and the schedule-requests sensor
        # refuse before a run exists). The tag keeps this failure from counting as "the
        # period ran" for the schedule, which would otherwise never request it.
        context.instance.add_run_tags(context.run_id, {**missing, REFUSED_TAG: "period"})
        raise Failure(f"report {report_id}: {exc}", allow_retries=False) from None
    if missing:
        context.instance.add_run_tags(context.run_id, missing)

    built = build_period(report, period, context.run_id, now, compliance_db, artifact_store, context.log.info)
    return MaterializeResult(metadata=built.metadata, check_results=built.check_results())


report_assets: dict[str, AssetsDefinition] = {f: build_report_asset(f) for f in FREQUENCIES}


@dataclass(frozen=True)
class BuiltPeriod:
    """One stored and checked report period: its materialization metadata and check outcomes."""

    metadata: dict[str, Any]
    outcomes: list
    document_location: str
    events_location: str | None

    def check_results(self) -> list[AssetCheckResult]:
        # Checks never block: a BROKEN chain is itself the finding to deliver.
        return [
            AssetCheckResult(
                check_name=o.name,
                passed=o.passed,
                severity=AssetCheckSeverity.ERROR if o.severity == "error" else AssetCheckSeverity.WARN,
                description=o.description,
                metadata=o.metadata,
            )
            for o in self.outcomes
        ]

    def check_evaluations(self, asset_key, partition: str) -> list[AssetCheckEvaluation]:
        """The same outcomes as events an op logs for one partition (batched backfills)."""
        return [
            AssetCheckEvaluation(
                asset_key=asset_key,
                check_name=o.name,
                passed=o.passed,
                severity=AssetCheckSeverity.ERROR if o.severity == "error" else AssetCheckSeverity.WARN,
                description=o.description,
                metadata=o.metadata,
                partition=partition,
            )
            for o in self.outcomes
        ]


def build_period(
    report: ReportConfig,
    period: str,
    run_id: str,
    now: datetime,
    compliance_db: ComplianceDatabase,
    artifact_store: ArtifactStoreResource,
    log: Callable[[str], None],
) -> BuiltPeriod:
    """Build, store and check one period of the report, then commit its signed checkpoint.

    Shared by the report asset (one period per run) and the batched backfill job (many).
    """
    report_id = report.id
    try:
        checkpoint_key = artifact_store.checkpoint_key()
        if report.export.redact_identifiers:
            Redactor(checkpoint_key)  # refuses a missing key: bad input, not retried
    except ValueError as exc:
        raise Failure(f"report {report_id}: {exc}", allow_retries=False) from None

    with tempfile.TemporaryDirectory(prefix="report-") as scratch:
        stored = build_and_store(
            audit_engine=compliance_db.audit_engine(),
            app_engine=compliance_db.app_engine(),
            store=artifact_store.store(compliance_db.app_engine()),
            report=report,
            period=period,
            run_id=run_id,
            generated_at=now,
            scratch=Path(scratch),
            checkpoint_key=checkpoint_key,
        )
        integrity = stored.build.integrity
        outcomes = [
            check_window(stored.document, report, period),
            check_totals(compliance_db.audit_engine(), report, period, stored.document, stored.build.events_path),
            check_integrity(stored.build.integrity_verdict, integrity.reason if integrity else None,
                            stored.document["data"].get("coverage")),
            check_coverage(stored.document),
        ]
    log(
        f"{report_id} {period}: {stored.build.event_count} events, "
        f"integrity {stored.build.integrity_verdict}, stored at {stored.document_location}"
    )
    metadata = report_materialization_metadata(stored)
    # Last step: the signed checkpoint blesses this run's result, so it is stored only once
    # the document and events are stored and checked; a run failing before leaves none.
    checkpoint_id = commit_checkpoint(compliance_db.app_engine(), stored)
    if checkpoint_id is not None:
        metadata["integrity_checkpoint_id"] = checkpoint_id
    return BuiltPeriod(metadata=metadata, outcomes=outcomes, document_location=stored.document_location,
                       events_location=stored.events_location)
