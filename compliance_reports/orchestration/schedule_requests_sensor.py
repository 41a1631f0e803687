"""The schedule-requests sensor: applies unschedule / schedule / run_now rows written by the CLI
or any other system, and keeps the report partitions in step with the configurations.

Each request is judged on its own: a run_now is checked (scheduling.check_requested_period and
the asset's own partitions) before its row is marked done, a bad request is marked failed with
the reason, and nothing one request does or fails to do reaches another of the same batch.
"""


import json
from dataclasses import dataclass
from datetime import datetime, timezone

from dagster import (
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)
from pydantic import ValidationError
from sqlalchemy import select, update

from compliance_reports.config.models import ScheduleRequest
from compliance_reports.config.store import set_enabled
from compliance_reports.db.schema import report_configs, schedule_requests
from compliance_reports.orchestration.dagster_runs import (
    cancel_pending_runs,
    cancel_scheduled_runs_of,
    in_flight_run,
)
from compliance_reports.orchestration.report_partitions import (
    FREQUENCIES,
    partition_key,
    period_partitions,
    report_id_partitions,
)
from compliance_reports.orchestration.report_jobs import report_jobs
from compliance_reports.orchestration.resources import ComplianceDatabase
from compliance_reports.periods import latest_ended_period
from compliance_reports.scheduling import PeriodRefused, check_requested_period, report_run_tags

BATCH = 500


@dataclass(frozen=True)
class Applied:
    """What one request came to: its row's status and result, and what the tick must return."""

    status: str  # done | failed
    result: dict
    run_request: RunRequest | None = None
    register: str | None = None  # frequency whose report partitions must hold the report


def _failed(message: str) -> Applied:
    return Applied("failed", {"error": message})


def build_schedule_requests_sensor() -> SensorDefinition:
    @sensor(
        name="schedule_requests_sensor",
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        jobs=list(report_jobs.values()),
        description="Applies schedule requests (unschedule, schedule, run_now) and registers report partitions.",
    )
    def _sensor(context: SensorEvaluationContext, compliance_db: ComplianceDatabase):
        engine = compliance_db.app_engine()
        after = int(context.cursor or 0)
        with engine.connect() as conn:
            pending = conn.execute(
                select(schedule_requests)
                .where(schedule_requests.c.id > after, schedule_requests.c.status == "pending")
                .order_by(schedule_requests.c.id)
                .limit(BATCH)
            ).mappings().all()
            reports = {
                row.id: row
                for row in conn.execute(
                    select(
                        report_configs.c.id, report_configs.c.frequency,
                        report_configs.c.organization_id, report_configs.c.enabled,
                        report_configs.c.config,
                    )
                )
            }

        instance = context.instance
        registered = {f: set(instance.get_dynamic_partitions(report_id_partitions[f].name)) for f in FREQUENCIES}
        wanted = {f: set() for f in FREQUENCIES}
        run_requests: list[RunRequest] = []
        requested: dict[tuple[str, str], str] = {}  # (report id, period) -> run key, this tick
        unscheduled: set[str] = set()
        now = datetime.now(timezone.utc)

        for req in pending:
            try:
                applied = _apply(req, reports.get(req["report_id"]), instance, engine, registered,
                                 requested, now)
            except Exception as exc:  # noqa: BLE001 - one broken request must not stop the batch
                context.log.exception(f"schedule request {req['id']} could not be applied")
                applied = _failed(f"{type(exc).__name__}: {exc}")
            with engine.begin() as conn:
                conn.execute(
                    update(schedule_requests)
                    .where(schedule_requests.c.id == req["id"], schedule_requests.c.status == "pending")
                    .values(status=applied.status, processed_at=now,
                            result=json.dumps(applied.result, sort_keys=True))
                )
            context.log.info(
                f"schedule request {req['id']} ({req['action']} {req['report_id']}): "
                f"{applied.status} {applied.result}"
            )
            after = req["id"]
            if applied.status != "done":
                continue
            if applied.run_request is not None:
                run_requests.append(applied.run_request)
                period, _, report_id = str(applied.run_request.partition_key).partition("|")
                requested[(report_id, period)] = applied.run_request.run_key
            if applied.register is not None:
                wanted[applied.register].add(req["report_id"])
            if req["action"] == "unschedule":
                unscheduled.add(req["report_id"])

        disabled = {rid for rid, row in reports.items() if not row.enabled} | unscheduled
        late = cancel_scheduled_runs_of(instance, disabled)
        if late:
            context.log.info(f"cancelled queued scheduled runs of disabled reports: {late}")

        # Reconcile: every enabled configuration has its partition, so reports applied from
        # YAML appear in the UI without a request. Partitions are never deleted here, so the
        # history of an unscheduled report stays visible.
        for report_id, row in reports.items():
            if row.enabled:
                wanted[row.frequency].add(report_id)
        add_requests = [
            report_id_partitions[f].build_add_request(sorted(wanted[f] - registered[f]))
            for f in FREQUENCIES
            if wanted[f] - registered[f]
        ]
        return SensorResult(
            run_requests=run_requests, dynamic_partitions_requests=add_requests, cursor=str(after)
        )

    return _sensor


def request_problem(req) -> str | None:
    """Why a row cannot be applied, by the model the CLI writes rows with (other systems
    write them too, with anything in them)."""
    try:
        ScheduleRequest(report_id=req["report_id"], action=req["action"], period=req["period"],
                        requested_by=req["requested_by"])
    except ValidationError as exc:
        return "; ".join(
            f"field '{'.'.join(map(str, e['loc']))}': {e['msg'].removeprefix('Value error, ')}"
            for e in exc.errors()
        )
    return None


def _apply(req, report, instance, engine, registered, requested, now) -> Applied:
    if (problem := request_problem(req)) is not None:
        return _failed(problem)
    action, report_id = req["action"], req["report_id"]
    if action not in ("unschedule", "schedule", "run_now"):
        return _failed(f"unknown action {action!r}")
    if report is None and action == "unschedule" and any(report_id in ids for ids in registered.values()):
        # `reports delete` removes the configuration and asks for this unschedule: the report
        # is known to Dagster (its partition), and its queued runs must still be cancelled.
        return Applied("done", {"disabled": False, "cancelled_runs": cancel_pending_runs(instance, report_id),
                                "configuration": "deleted"})
    if report is None:
        return _failed(f"report {report_id!r} does not exist")
    if action == "unschedule":
        cancelled = cancel_pending_runs(instance, report_id)
        disabled = False
        if report.enabled:
            set_enabled(engine, report_id, False)
            disabled = True
        return Applied("done", {"disabled": disabled, "cancelled_runs": cancelled})
    if action == "schedule":
        enabled = False
        if not report.enabled:
            set_enabled(engine, report_id, True)
            enabled = True
        return Applied("done", {"enabled": enabled, "partition": report_id}, register=report.frequency)
    return _run_now(req, report, instance, requested, now)


def _run_now(req, report, instance, requested: dict[tuple[str, str], str], now) -> Applied:
    frequency, timezone_name = report.frequency, report.config["schedule"]["timezone"]
    period = req["period"] or latest_ended_period(now, frequency, timezone_name)
    try:
        check_requested_period(period, frequency, timezone_name, now)
    except PeriodRefused as exc:
        return _failed(f"period: {exc}")
    # The asset's partitions are built from the same first periods; this keeps a drift between
    # the two from turning into an error that fails the whole tick after rows were marked.
    if not period_partitions[frequency].has_partition_key(period):
        return _failed(f"period: {period} is not a partition of {frequency}_compliance_report")
    # Coalesced: no second run of a (report, period) while one is queued or running, nor two
    # from requests handled in the same tick.
    running = requested.get((report.id, period)) or in_flight_run(instance, report.id, period)
    if running:
        return Applied("done", {"requested_period": period, "coalesced_with": running}, register=frequency)
    run_key = f"request:{req['id']}"
    request = RunRequest(
        run_key=run_key,
        partition_key=partition_key(period, report.id),
        job_name=report_jobs[frequency].name,
        tags=report_run_tags(report.organization_id, "request"),
    )
    return Applied("done", {"requested_period": period, "run_key": run_key}, request, register=frequency)
