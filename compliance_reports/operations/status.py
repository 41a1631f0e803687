"""Where each report stands, read from the configuration, Dagster's storage and the ledger.

Feeds `compliance-reports status`, `doctor`'s recent-failure checks and the Prometheus
collector. Every figure comes from a few indexed queries per report (the latest report run,
the latest failed run, its publish run) plus one query per frequency for materializations and
one grouped query on the delivery ledger, so a scrape stays cheap.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from dagster import (
    AssetRecordsFilter,
    DagsterInstance,
    DagsterRunStatus,
    RunsFilter,
)
from sqlalchemy import Engine, func, select

from compliance_reports.config import store as config_store
from compliance_reports.db.schema import deliveries
from compliance_reports.orchestration.dagster_runs import (
    IN_FLIGHT,
    PERIOD_TAG,
    PUBLISH_JOB,
    REFUSED_TAG,
    REPORT_TAG,
    report_asset_key,
    run_error,
)
from compliance_reports.periods import describe_slots, period_window

# How many recent materializations per frequency are read to find each report's latest.
MATERIALIZATION_WINDOW = 2000
OUTCOMES = ("success", "failure", "running", "never")


@dataclass
class ReportStatus:
    report_id: str
    frequency: str
    enabled: bool
    last_period: str | None = None          # newest period with a report (materialization)
    last_period_end_utc: datetime | None = None
    integrity: str | None = None            # verdict of that report
    last_run_period: str | None = None      # the newest report run, whatever its outcome
    last_run_status: str | None = None
    publish_status: str | None = None       # of the newest report run's publication
    outcome: str = "never"                  # success | failure | running | never
    next_slot_local: str | None = None
    next_slot_utc: str | None = None
    next_period: str | None = None
    deliveries: dict[str, int] = field(default_factory=dict)  # failed/dead counts
    last_failure: str | None = None
    last_failure_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _latest_materializations(instance: DagsterInstance, frequencies: set[str]) -> dict[str, Any]:
    """report id -> its newest materialization record."""
    latest: dict[str, Any] = {}
    for frequency in sorted(frequencies):
        records = instance.fetch_materializations(
            AssetRecordsFilter(asset_key=report_asset_key(frequency)),
            limit=MATERIALIZATION_WINDOW, ascending=False,
        ).records
        for record in records:
            partition = record.asset_materialization.partition or ""
            period, _, report_id = partition.partition("|")
            known = latest.get(report_id)
            if known is None or period > known[0]:
                latest[report_id] = (period, record)
    return {report_id: record for report_id, (_, record) in latest.items()}


def delivery_problems(app: Engine) -> dict[str, dict[str, int]]:
    """report id -> {"failed": n, "dead": n} over the whole ledger (one grouped query)."""
    query = (select(deliveries.c.report_id, deliveries.c.status, func.count())
             .where(deliveries.c.status.in_(("failed", "dead")))
             .group_by(deliveries.c.report_id, deliveries.c.status))
    problems: dict[str, dict[str, int]] = defaultdict(dict)
    with app.connect() as conn:
        for report_id, status, count in conn.execute(query):
            problems[report_id][status] = count
    return problems


def _last_delivery_error(app: Engine, report_id: str) -> tuple[datetime | None, str | None]:
    query = (select(deliveries.c.updated_at, deliveries.c.destination, deliveries.c.last_error,
                    deliveries.c.status)
             .where(deliveries.c.report_id == report_id, deliveries.c.status.in_(("failed", "dead")))
             .order_by(deliveries.c.updated_at.desc()).limit(1))
    with app.connect() as conn:
        row = conn.execute(query).first()
    if row is None:
        return None, None
    return row.updated_at, f"delivery to {row.destination} {row.status}: {row.last_error or '?'}"


def _report_runs(instance: DagsterInstance, report_id: str, statuses=None, limit: int = 5):
    records = instance.get_run_records(
        RunsFilter(tags={REPORT_TAG: report_id}, statuses=statuses), limit=limit)
    return [r for r in records if not (REFUSED_TAG in r.dagster_run.tags
                                       and r.dagster_run.status == DagsterRunStatus.FAILURE)]


def _publish_run(instance: DagsterInstance, report_run_id: str):
    records = instance.get_run_records(
        RunsFilter(job_name=PUBLISH_JOB, tags={"report_run_id": report_run_id}), limit=1)
    return records[0] if records else None


def _outcome(run_status: str | None, publish_status: str | None) -> str:
    if run_status is None:
        return "never"
    in_flight = {s.value for s in IN_FLIGHT}
    if run_status in in_flight or publish_status in in_flight:
        return "running"
    if run_status == "SUCCESS" and publish_status in (None, "SUCCESS"):
        # No publish run yet means the sensor has not reached it: not a failure.
        return "success"
    return "failure"


def report_statuses(app: Engine, instance: DagsterInstance, now: datetime | None = None) -> list[ReportStatus]:
    """One entry per configured report, in id order."""
    now = now or datetime.now(timezone.utc)
    reports = config_store.list_reports(app)
    latest = _latest_materializations(instance, {r.frequency for r in reports})
    problems = delivery_problems(app)
    statuses = []
    for report in sorted(reports, key=lambda r: r.id):
        status = ReportStatus(report.id, report.frequency, report.enabled,
                              deliveries=dict(problems.get(report.id, {})))
        record = latest.get(report.id)
        if record is not None:
            metadata = {k: v.value for k, v in record.asset_materialization.metadata.items()}
            status.last_period = record.asset_materialization.partition.partition("|")[0]
            status.last_period_end_utc = period_window(
                status.last_period, report.frequency, report.schedule.timezone).end_utc
            status.integrity = metadata.get("integrity_verdict")
        runs = _report_runs(instance, report.id, limit=5)
        if runs:
            run = runs[0].dagster_run
            status.last_run_period = run.tags.get(PERIOD_TAG)
            status.last_run_status = run.status.value
            publish = _publish_run(instance, run.run_id) if run.status == DagsterRunStatus.SUCCESS else None
            status.publish_status = publish.dagster_run.status.value if publish else None
        status.outcome = _outcome(status.last_run_status, status.publish_status)
        if report.enabled:
            slot = describe_slots(report.schedule.to_spec(), now, 1)
            if slot:
                status.next_slot_local = slot[0]["slot_local"]
                status.next_slot_utc = slot[0]["slot_utc"]
                status.next_period = slot[0]["period"]
        status.last_failure_at, status.last_failure = _last_failure(instance, app, report.id)
        statuses.append(status)
    return statuses


def _last_failure(instance: DagsterInstance, app: Engine, report_id: str) -> tuple[datetime | None, str | None]:
    """The newest of: a failed report run, a failed publish run, a failed or dead delivery."""
    candidates: list[tuple[datetime, str]] = []
    failed = _report_runs(instance, report_id, statuses=[DagsterRunStatus.FAILURE], limit=1)
    failed += instance.get_run_records(RunsFilter(job_name=PUBLISH_JOB, tags={"report_id": report_id},
                                                  statuses=[DagsterRunStatus.FAILURE]), limit=1)
    for record in failed:
        run = record.dagster_run
        period = run.tags.get(PERIOD_TAG) or run.tags.get("period")
        kind = "publish" if run.job_name == PUBLISH_JOB else "report"
        error = run_error(instance, run.run_id) or "failed"
        at = (record.end_time and datetime.fromtimestamp(record.end_time, timezone.utc)) or record.create_timestamp
        candidates.append((at, f"{kind} run {run.run_id[:8]} ({period}): {error}"))
    at, text = _last_delivery_error(app, report_id)
    if at is not None:
        candidates.append((at if at.tzinfo else at.replace(tzinfo=timezone.utc), text))
    if not candidates:
        return None, None
    return max(candidates, key=lambda c: c[0])


def recent_failures(app: Engine, instance: DagsterInstance, days: int = 7,
                    now: datetime | None = None) -> dict[str, Any]:
    """Failed runs (any job of the location) and failed/dead deliveries of the last `days` days."""
    now = now or datetime.now(timezone.utc)
    since = now - timedelta(days=days)
    runs = instance.get_run_records(
        RunsFilter(statuses=[DagsterRunStatus.FAILURE], created_after=since), limit=1000)
    failed_runs = [
        {"run_id": r.dagster_run.run_id, "job": r.dagster_run.job_name,
         "report_id": r.dagster_run.tags.get(REPORT_TAG) or r.dagster_run.tags.get("report_id"),
         "period": r.dagster_run.tags.get(PERIOD_TAG) or r.dagster_run.tags.get("period")}
        for r in runs if REFUSED_TAG not in r.dagster_run.tags
    ]
    query = (select(deliveries.c.status, deliveries.c.destination)
             .where(deliveries.c.status.in_(("failed", "dead")), deliveries.c.updated_at >= since))
    with app.connect() as conn:
        counted = Counter((row.status, row.destination) for row in conn.execute(query))
    return {"failed_runs": failed_runs,
            "deliveries": [{"status": s, "destination": d, "count": n} for (s, d), n in sorted(counted.items())]}
