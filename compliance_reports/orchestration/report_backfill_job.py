"""The batched backfill job: many periods of one report built and published in one run.

A job backfill launches one run per partition: at demo sizes most of each period's time is the
run itself (a process, the code location, the event log) and its publish run. This job does
the same per-period work as the report asset and the publish job, in one process: for each
period, build, store and check the report, commit its checkpoint, export and deliver it, then
log the report's materialization (with its check evaluations) and the publication's, so the
asset's partitions, checks and publications read in the UI as after one run per period.

The report materialization carries `published_in_run`, so the publish sensor does not publish
it a second time. A period whose export fails for good is logged without it: the publish
sensor then publishes it through the publish job, with that job's retries and alerts. A step
retried after an outage resumes at the first period this run has not materialized; the dead
deliveries of the periods before it are read back from their publication materializations
(`dead_deliveries`), so the run still fails for them at the end.
"""


from datetime import datetime, timezone

from dagster import (
    AssetMaterialization,
    Config,
    MetadataValue,
    DagsterEventType,
    Failure,
    OpExecutionContext,
    in_process_executor,
    job,
    op,
)

from compliance_reports.config import store as config_store
from compliance_reports.orchestration.dagster_runs import PUBLISHED_IN_RUN, report_asset_key
from compliance_reports.orchestration.publication_assets import publication_asset_key
from compliance_reports.orchestration.publish_job import (
    HANDLED_BY_LEDGER,
    deliver_stored,
    export_period,
    publication_materialization,
)
from compliance_reports.orchestration.report_assets import build_period
from compliance_reports.orchestration.report_metadata import publication_metadata
from compliance_reports.orchestration.report_partitions import partition_key_string
from compliance_reports.orchestration.resources import ArtifactStoreResource, ComplianceDatabase
from compliance_reports.orchestration.transient_retries import retry_transient
from compliance_reports.operations import transient_errors
from compliance_reports.scheduling import PeriodRefused, check_requested_period

class BackfillBatchConfig(Config):
    """Which report and which of its periods (oldest first) one batch run builds."""

    report_id: str
    frequency: str
    periods: list[str]


@op(description="Build, check, store, export and deliver each period of the batch in turn.")
def build_and_publish_periods(
    context: OpExecutionContext,
    config: BackfillBatchConfig,
    compliance_db: ComplianceDatabase,
    artifact_store: ArtifactStoreResource,
) -> None:
    with retry_transient(context):
        report, dead = _run_batch(context, config, compliance_db, artifact_store)
    if dead:
        summary = "; ".join(dead)
        context.log.error(f"{len(dead)} deliveries are dead: {summary}")
        raise Failure(f"{len(dead)} deliveries of this backfill did not go through: {summary}"[:2000],
                      allow_retries=False, metadata=HANDLED_BY_LEDGER if report.notify_on_failure else None)


DEAD_DELIVERIES = "dead_deliveries"


def _logged_by_this_run(context: OpExecutionContext, frequency: str) -> tuple[set[str], list[str]]:
    """Partitions this run already logged (a retried step resumes after them) and the dead
    deliveries their publications recorded."""
    report_key, publication_key = report_asset_key(frequency), publication_asset_key(frequency)
    done, dead = set(), []
    for entry in context.instance.all_logs(context.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION):
        materialization = entry.dagster_event.step_materialization_data.materialization
        if materialization.asset_key == report_key and materialization.partition:
            done.add(materialization.partition)
        elif materialization.asset_key == publication_key and DEAD_DELIVERIES in materialization.metadata:
            dead += materialization.metadata[DEAD_DELIVERIES].value
    return done, dead


def _run_batch(context: OpExecutionContext, config: BackfillBatchConfig, compliance_db, artifact_store):
    try:
        report = compliance_db.load_report(config.report_id)
    except config_store.NotFoundError as exc:
        raise Failure(f"{exc}: apply its configuration before running it", allow_retries=False) from None
    if report.frequency != config.frequency:
        raise Failure(f"report {report.id} is {report.frequency}, not {config.frequency}", allow_retries=False)
    now = datetime.now(timezone.utc)
    for period in config.periods:
        try:
            check_requested_period(period, report.frequency, report.schedule.timezone, now)
        except PeriodRefused as exc:
            raise Failure(f"report {report.id}, period {period}: {exc}", allow_retries=False) from None

    asset_key = report_asset_key(report.frequency)
    done, dead = _logged_by_this_run(context, report.frequency)
    total = len(config.periods)
    for number, period in enumerate(config.periods, start=1):
        partition = partition_key_string(period, report.id)
        if partition in done:
            continue
        built = build_period(report, period, context.run_id, now, compliance_db, artifact_store, context.log.info)
        metadata = dict(built.metadata)
        publication = None
        try:
            published = export_period(report, period, context.run_id, built.document_location,
                                      built.events_location, compliance_db, artifact_store)
            outcomes = deliver_stored(report, published, compliance_db, artifact_store, context.log.info)
            publication = publication_metadata(published, context.run_id, context.run_id)
            metadata[PUBLISHED_IN_RUN] = True
            period_dead = [f"{period} {o.destination}/{o.recipient}: {o.error}" for o in outcomes
                           if o.status == "dead"]
            if period_dead:
                publication[DEAD_DELIVERIES] = MetadataValue.json(period_dead)
            dead += period_dead
        except Exception as exc:
            if transient_errors.classify(exc).transient:
                raise  # the step is retried and resumes at this period
            context.log.error(f"{report.id} {period}: publish failed ({type(exc).__name__}: {exc}); "
                              "the publish sensor publishes it")
        context.log_event(AssetMaterialization(asset_key=asset_key, partition=partition, metadata=metadata))
        for evaluation in built.check_evaluations(asset_key, partition):
            context.log_event(evaluation)
        if publication is not None:
            context.log_event(publication_materialization(report.frequency, period, report.id, publication))
        context.log.info(f"period {number} of {total} ({period}) reported"
                         + (" and published" if publication is not None else ""))
    return report, dead


@job(
    description="Builds and publishes many periods of one report in one run (report_backfill_job).",
    tags={"compliance_reports/stage": "backfill"},
    executor_def=in_process_executor,
)
def report_backfill_job():
    """A batched backfill of one report over consecutive periods."""
    build_and_publish_periods()
