"""The schedule-requests sensor: applies unschedule / schedule / run_now rows written by the CLI
or any other system, and keeps the report partitions in step with the configurations."""


import json
from datetime import datetime, timezone

from dagster import (
    AssetsDefinition,
    DefaultSensorStatus,
    RunRequest,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    sensor,
)
from sqlalchemy import select, update

from compliance_reports.config.store import set_enabled
from compliance_reports.db.schema import report_configs, schedule_requests
from compliance_reports.orchestration.dagster_runs import (
    cancel_pending_runs,
    cancel_scheduled_runs_of,
    in_flight_run,
    report_asset_key,
)
from compliance_reports.orchestration.report_partitions import (
    FREQUENCIES,
    partition_key,
    report_id_partitions,
)
from compliance_reports.orchestration.resources import ComplianceDatabase
from compliance_reports.periods import latest_ended_period, validate_period_key
from compliance_reports.scheduling import run_tags

BATCH = 500


def build_schedule_requests_sensor(report_assets: dict[str, AssetsDefinition]) -> SensorDefinition:
    @sensor(
        name="schedule_requests_sensor",
        minimum_interval_seconds=30,
        default_status=DefaultSensorStatus.RUNNING,
        asset_selection=list(report_assets.values()),
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
        now = datetime.now(timezone.utc)

        for req in pending:
            report = reports.get(req["report_id"])
            outcome, status = _apply(req, report, instance, engine, wanted, run_requests, now)
            with engine.begin() as conn:
                conn.execute(
                    update(schedule_requests)
                    .where(schedule_requests.c.id == req["id"], schedule_requests.c.status == "pending")
                    .values(status=status, processed_at=now, result=json.dumps(outcome, sort_keys=True))
                )
            context.log.info(f"schedule request {req['id']} ({req['action']} {req['report_id']}): {outcome}")
            after = req["id"]

        disabled = {rid for rid, row in reports.items() if not row.enabled} | {
            req["report_id"] for req in pending if req["action"] == "unschedule"
        }
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


def _apply(req, report, instance, engine, wanted, run_requests, now) -> tuple[dict, str]:
    action, report_id = req["action"], req["report_id"]
    if action == "unschedule":
        cancelled = cancel_pending_runs(instance, report_id)
        disabled = False
        if report is not None and report.enabled:
            set_enabled(engine, report_id, False)
            disabled = True
        return {"disabled": disabled, "cancelled_runs": cancelled}, "done"
    if report is None:
        return {"error": f"report {report_id!r} does not exist"}, "failed"
    if action == "schedule":
        enabled = False
        if not report.enabled:
            set_enabled(engine, report_id, True)
            enabled = True
        wanted[report.frequency].add(report_id)
        return {"enabled": enabled, "partition": report_id}, "done"
    if action == "run_now":
        timezone_name = report.config["schedule"]["timezone"]
        period = req["period"] or latest_ended_period(now, report.frequency, timezone_name)
        try:
            validate_period_key(period, report.frequency)
        except ValueError as exc:
            return {"error": f"period: {exc}"}, "failed"
        wanted[report.frequency].add(report_id)
        # Coalesced: no second run of a (report, period) while one is queued or running, nor two
        # from requests handled in the same tick.
        requested = {(r.tags["report_id"], r.tags["period"]): r.run_key for r in run_requests}
        running = requested.get((report_id, period)) or in_flight_run(instance, report_id, period)
        if running:
            return {"requested_period": period, "coalesced_with": running}, "done"
        run_requests.append(
            RunRequest(
                run_key=f"request:{req['id']}",
                partition_key=partition_key(period, report_id),
                asset_selection=[report_asset_key(report.frequency)],
                tags=run_tags(report_id, report.organization_id, report.frequency, period, "request"),
            )
        )
        return {"requested_period": period, "run_key": f"request:{req['id']}"}, "done"
    return {"error": f"unknown action {action!r}"}, "failed"
