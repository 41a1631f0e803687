"""The real code location on a test instance, driven step by step as the daemon drives it.

`Pipeline` holds the application database (SQLite or the test's own PostgreSQL cluster), a
Dagster instance and the code location's definitions with resources on that database. Its
methods do what the daemon does between two moments of a fault: evaluate a schedule tick,
launch what it requested (`materialize` with the request's partition and tags), evaluate the
publish sensor and execute the publish runs it requested, evaluate the failure-alert sensor and
execute the `delivery_retry_job` run it requested, run the retry sweep. Nothing is mocked.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections import Counter
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

from dagster import DagsterEventType, materialize
from dagster import build_schedule_context, build_sensor_context
from sqlalchemy import Engine

from compliance_reports.config import store as config_store
from compliance_reports.config.models import ReportConfig, parse_destination
from compliance_reports.db import migrate
from compliance_reports.db.engine import make_engine
from compliance_reports.delivery import alert_fallback, ledger
from compliance_reports.demo.seed import SeedOptions, seed_audit_log
from compliance_reports.delivery.dispatcher import retry_due
from compliance_reports.exporters.publishing import stored_publication_loader
from compliance_reports.orchestration.report_assets import report_assets
from compliance_reports.orchestration.resources import ArtifactStoreResource
from compliance_reports.settings import load_settings
from compliance_reports_tests.delivery.conftest import LOCAL_RECEIVER
from compliance_reports_tests.orchestration.helpers import location_for_tests

ORG = "org-stmarys"  # the first demo organization
FAST = {"max_attempts": 3, "initial_delay_s": 0.01, "multiplier": 2, "max_delay_s": 0.02}


def utc_today():
    return datetime.now(timezone.utc).date()


def days_ago(n: int) -> str:
    return (utc_today() - timedelta(days=n)).isoformat()


def report_doc(report_id: str, destinations: list[str], notify: list[str] = (), **schedule) -> dict[str, Any]:
    return {
        "id": report_id, "name": f"Report {report_id}", "organization_id": ORG,
        "report_type": "general_compliance",
        "schedule": {"frequency": "daily", "time": "00:00", "timezone": "UTC", "max_catch_up": 2, **schedule},
        "formats": ["json"], "destinations": list(destinations), "notify_on_failure": list(notify),
    }


def webhook(name: str, url: str, **retry) -> dict[str, Any]:
    # The receivers run on loopback: allowed on purpose (the outbound guard refuses it otherwise).
    return {"name": name, "type": "webhook", "url": url, "timeout_s": 5, "retry": {**FAST, **retry},
            **LOCAL_RECEIVER}


def mail(name: str, port: int, to: list[str], **retry) -> dict[str, Any]:
    return {"name": name, "type": "email", "host": "127.0.0.1", "port": port, "security": "none",
            "from": "reports@example.org", "to": to, "retry": {**FAST, **retry}}


def copies_by_key(peer) -> Counter:
    """What an HTTP receiver got: copies per idempotency key (one key per ledger row)."""
    return Counter(r.headers.get("Idempotency-Key") for r in peer.requests)


def mails_by_recipient(peer) -> Counter:
    return Counter(rcpt for m in peer.messages for rcpt in m["rcpt_tos"])


@dataclass
class Pipeline:
    url: str
    engine: Engine
    defs: Any
    instance: Any
    publish_cursor: str | None = None
    alert_cursor: str | None = None
    requests_cursor: str | None = None
    runs: list[Any] = field(default_factory=list)

    # ------------------------------------------------------------ report runs

    def tick_schedule(self, at: datetime, frequency: str = "daily"):
        schedule = self.defs.get_repository_def().get_schedule_def(f"{frequency}_reports_schedule")
        with build_schedule_context(instance=self.instance, scheduled_execution_time=at,
                                    repository_def=self.defs.get_repository_def(),
                                    resources=self.defs.resources) as context:
            return schedule.evaluate_tick(context)

    def launch(self, request, frequency: str = "daily"):
        """Execute a run request as the daemon launches it (partition and tags of the request)."""
        result = materialize([report_assets[frequency]], partition_key=str(request.partition_key),
                             instance=self.instance, resources=self.defs.resources, tags=request.tags,
                             raise_on_error=False)
        self.runs.append(result)
        return result

    def run_period(self, report_id: str, period: str, trigger: str = "manual"):
        """A daily report run of one period (as `compliance-reports run` launches it); reads
        nothing from the application database, which may be down."""
        if not self.instance.has_dynamic_partition("daily_reports", report_id):
            self.instance.add_dynamic_partitions("daily_reports", [report_id])
        return self.launch(SimpleNamespace(
            partition_key=f"{period}|{report_id}",
            tags={"report_id": report_id, "organization_id": ORG, "frequency": "daily",
                  "period": period, "trigger": trigger},
        ))

    def tick_requests(self):
        """Evaluate the schedule-requests sensor (unschedule, schedule, run_now rows)."""
        sensor = self.defs.get_repository_def().get_sensor_def("schedule_requests_sensor")
        with build_sensor_context(instance=self.instance, instance_ref=self.instance.get_ref(),
                                  definitions=self.defs, cursor=self.requests_cursor,
                                  resources=self.defs.resources) as context:
            tick = sensor.evaluate_tick(context)
        self.requests_cursor = tick.cursor
        for request in tick.dynamic_partitions_requests:  # what the daemon applies after the tick
            self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        return tick

    # ------------------------------------------------------------ publish, alerts, sweep

    def publish(self) -> list:
        """Evaluate the publish sensor and execute every publish run it requests."""
        sensor = self.defs.get_repository_def().get_sensor_def("publish_report_sensor")
        with build_sensor_context(instance=self.instance, cursor=self.publish_cursor, definitions=self.defs,
                                  resources=self.defs.resources) as context:
            tick = sensor.evaluate_tick(context)
        self.publish_cursor = tick.cursor
        job = self.defs.get_job_def("publish_report_job")
        return [job.execute_in_process(run_config=r.run_config, instance=self.instance, tags=r.tags,
                                       raise_on_error=False) for r in tick.run_requests]

    def tick_alerts(self):
        """Evaluate the failure-alert sensor; execute the delivery run it requests. Raises like the
        tick does (the cursor then stays where it was)."""
        sensor = self.defs.get_repository_def().get_sensor_def("report_failure_alert_sensor")
        with build_sensor_context(instance=self.instance, cursor=self.alert_cursor, definitions=self.defs,
                                  resources=self.defs.resources) as context:
            tick = sensor.evaluate_tick(context)
        self.alert_cursor = tick.cursor
        for request in tick.run_requests:
            self.defs.get_job_def("delivery_retry_job").execute_in_process(instance=self.instance,
                                                                           tags=request.tags)
        return tick

    def sweep(self):
        return self.defs.get_job_def("delivery_retry_job").execute_in_process(instance=self.instance)

    def sweep_at(self, when: datetime) -> list:
        """The sweep as it runs at a later instant `when` (what delivery_retry_job does then)."""
        engine = self.engine
        with tempfile.TemporaryDirectory(prefix="sweep-") as scratch:
            return retry_due(
                engine, stored_publication_loader(engine, ArtifactStoreResource().store(engine), Path(scratch)),
                lambda name: config_store.get_destination(engine, name), now_fn=lambda: when,
                sleep_fn=lambda s: None,
                load_alert_destinations=lambda rid: [config_store.get_destination(engine, n) for n in
                                                     config_store.get_report(engine, rid).notify_on_failure],
            )

    # ------------------------------------------------------------ what happened

    def rows(self, report_id: str | None = None) -> list[dict[str, Any]]:
        return [r for r in ledger.list_rows(self.engine, report_id=report_id)
                if not r["recipient"].startswith("alert:")]

    def alert_rows(self) -> list[dict[str, Any]]:
        return [r for r in ledger.list_rows(self.engine) if r["recipient"].startswith("alert:")]

    def fallback(self) -> list[dict[str, Any]]:
        return alert_fallback.read_entries(load_settings().alerts_log)

    def step_retried(self) -> bool:
        """Whether a step of a recent run has asked for a retry (STEP_UP_FOR_RETRY)."""
        for record in self.instance.get_run_records(limit=5):
            if self.instance.all_logs(record.dagster_run.run_id, of_type=DagsterEventType.STEP_UP_FOR_RETRY):
                return True
        return False

    def retries_of(self, result) -> int:
        return sum(1 for e in result.all_events if e.event_type == DagsterEventType.STEP_UP_FOR_RETRY)


@contextmanager
def pipeline(url: str, destinations: list[dict], reports: list[dict], *, audit_url: str | None = None,
             seed_days: int = 4, instance_overrides: dict | None = None) -> Iterator[Pipeline]:
    from compliance_reports_tests.orchestration.helpers import queued_instance

    engine = make_engine(url)
    migrate.upgrade_all(engine, engine)
    seed_audit_log(engine, SeedOptions(orgs=1, days=seed_days, events_per_day=40, seed=13,
                                       end_date=utc_today() - timedelta(days=1)))
    config_store.apply_destinations(engine, [parse_destination(d) for d in destinations])
    config_store.apply_reports(engine, [ReportConfig.model_validate(r) for r in reports])
    defs = location_for_tests(url, audit_url=audit_url)
    try:
        with queued_instance(instance_overrides) as instance:
            p = Pipeline(url, engine, defs, instance)
            p.tick_alerts()  # the failure sensor's first tick: starts after existing failures
            yield p
    finally:
        engine.dispose()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
