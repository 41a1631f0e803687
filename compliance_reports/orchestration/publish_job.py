"""The publish job: export a report materialization's files once, then deliver them."""

import tempfile
from pathlib import Path

from dagster import (
    AssetMaterialization,
    Config,
    Failure,
    OpExecutionContext,
    Out,
    in_process_executor,
    job,
    op,
)

from compliance_reports.config.store import get_destination
from compliance_reports.delivery.dispatcher import deliver_publication
from compliance_reports.exporters.publishing import (
    PublishedSet,
    export_and_store,
    fetch_publication,
)
from compliance_reports.orchestration.publication_assets import publication_asset_key
from compliance_reports.orchestration.report_metadata import publication_metadata
from compliance_reports.orchestration.resources import ArtifactStoreResource, ComplianceDatabase
from compliance_reports.orchestration.transient_retries import retry_transient

# Marks a publish failure whose alerts the delivery ledger already raised (one per distinct
# failed delivery): the failure sensor sends no second, run-level alert for it.
HANDLED_BY_LEDGER = {"failure_alerted_by": "delivery_ledger"}


class PublishConfig(Config):
    """What the publish sensor passes: the materialization to publish."""

    report_id: str
    period: str
    frequency: str
    report_run_id: str
    document_location: str
    events_location: str = ""
    materialization_id: int = 0


@op(out=Out(dict), description="Render every configured format once; store files and a signed manifest.")
def export_report(
    context: OpExecutionContext,
    config: PublishConfig,
    compliance_db: ComplianceDatabase,
    artifact_store: ArtifactStoreResource,
) -> dict:
    with retry_transient(context):
        return _export(context, config, compliance_db, artifact_store)


def _export(context, config: PublishConfig, compliance_db, artifact_store) -> dict:
    report = compliance_db.load_report(config.report_id)
    published = export_period(report, config.period, config.report_run_id, config.document_location,
                              config.events_location or None, compliance_db, artifact_store)
    metadata = publication_metadata(published, config.report_run_id, context.run_id)
    context.add_output_metadata({k: metadata[k] for k in ("file_count", "total_bytes", "manifest", "report_run")})
    context.log_event(publication_materialization(config.frequency, config.period, config.report_id, metadata))
    return published.to_dict()


def export_period(report, period: str, report_run_id: str, document_location: str, events_location: str | None,
                  compliance_db, artifact_store) -> PublishedSet:
    """Render every configured format of one stored report once; store the files and the manifest."""
    store = artifact_store.store(compliance_db.app_engine())
    with tempfile.TemporaryDirectory(prefix="publish-") as scratch:
        return export_and_store(
            store,
            report,
            period,
            report_run_id,
            document_location,
            events_location,
            Path(scratch),
            artifact_store.manifest_key(),
            ledger_engine=compliance_db.app_engine(),
        )


def publication_materialization(frequency: str, period: str, report_id: str, metadata: dict) -> AssetMaterialization:
    return AssetMaterialization(
        asset_key=publication_asset_key(frequency), partition=f"{period}|{report_id}", metadata=metadata,
    )


@op(description="Deliver the stored files to every destination, exactly once per recipient.")
def deliver_report(
    context: OpExecutionContext,
    published: dict,
    compliance_db: ComplianceDatabase,
    artifact_store: ArtifactStoreResource,
) -> None:
    with retry_transient(context):
        report, outcomes = _deliver(context, published, compliance_db, artifact_store)
    dead = [o for o in outcomes if o.status == "dead"]
    deferred = [o for o in outcomes if o.status in ("failed", "in_progress")]
    if deferred:
        # Not a run failure: the rows are in the ledger and the retry sweep owns them; an alert
        # follows only if one of them ends dead (a 429 that later succeeds alerts nobody).
        context.log.warning(
            f"{len(deferred)} of {len(outcomes)} deliveries handed to the retry sweep: "
            + "; ".join(f"{o.destination}/{o.recipient}: {o.status}" for o in deferred)
        )
    if dead:
        summary = "; ".join(f"{o.destination}/{o.recipient}: {o.error}" for o in dead)
        context.log.error(f"{len(dead)} of {len(outcomes)} deliveries are dead: {summary}")
        # The run must say it failed. With notify_on_failure the ledger already alerted each
        # distinct failure; without, the failure sensor's run alert goes to the fallback.
        raise Failure(f"{len(dead)} of {len(outcomes)} deliveries did not go through: {summary}",
                      allow_retries=False, metadata=HANDLED_BY_LEDGER if report.notify_on_failure else None)


def _deliver(context, published: dict, compliance_db, artifact_store) -> tuple:
    stored = PublishedSet.from_dict(published)
    report = compliance_db.load_report(stored.report_id)
    outcomes = deliver_stored(report, stored, compliance_db, artifact_store, context.log.info)
    if not report.destinations:
        return report, outcomes
    table = [
        {"destination": o.destination, "recipient": o.recipient, "status": o.status}
        for o in outcomes
    ]
    context.add_output_metadata({"deliveries": table, "delivery_count": len(table)})
    return report, outcomes


def deliver_stored(report, stored: PublishedSet, compliance_db, artifact_store, log) -> list:
    """Deliver one stored publication to each of the report's destinations (the ledger's outcomes)."""
    engine = compliance_db.app_engine()
    if not report.destinations:
        log(f"{report.id} has no destinations: nothing to deliver")
        return []
    destinations = [get_destination(engine, name) for name in report.destinations]
    alerts = [get_destination(engine, name) for name in report.notify_on_failure]
    with tempfile.TemporaryDirectory(prefix="deliver-") as scratch:
        publication = fetch_publication(artifact_store.store(engine), stored, report, Path(scratch))
        return deliver_publication(engine, publication, destinations, log=log, alert_destinations=alerts)


@job(
    description="Exports a stored compliance report to its formats and delivers the files (publish_report_job).",
    tags={"compliance_reports/stage": "publish"},
    # Two short sequential steps: one process instead of one per step.
    executor_def=in_process_executor,
)
def publish_report_job():
    """Export and delivery of one report materialization."""
    deliver_report(export_report())
