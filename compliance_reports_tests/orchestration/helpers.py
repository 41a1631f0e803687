"""Building a test code location and Dagster instance around a test database."""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime

from dagster import DagsterInstance, DagsterRun, DagsterRunStatus, Definitions, instance_for_test
from dagster._core.remote_origin import (
    InProcessCodeLocationOrigin,
    RemoteJobOrigin,
    RemoteRepositoryOrigin,
)
from dagster._core.types.loadable_target_origin import LoadableTargetOrigin
from dagster._core.utils import make_new_run_id

from compliance_reports.orchestration.dagster_runs import PERIOD_TAG, REPORT_TAG
from compliance_reports.orchestration.resources import default_resources

QUEUED_COORDINATOR = {
    "run_coordinator": {
        "module": "dagster._core.run_coordinator",
        "class": "QueuedRunCoordinator",
    }
}


def location_for_tests(app_url: str, audit_url: str | None = None, artifact_dir: str | None = None) -> Definitions:
    """The real code location's assets, schedules and sensors with resources on the test databases."""
    from compliance_reports import definitions as location

    resources = default_resources(app_db_url=app_url, audit_db_url=audit_url or app_url)
    if artifact_dir:
        resources["artifact_store"] = resources["artifact_store"].model_copy(
            update={"provider": "local", "base_dir": artifact_dir}
        )
    return Definitions(
        assets=location.defs.assets,
        asset_checks=location.defs.asset_checks,
        schedules=location.defs.schedules,
        sensors=location.defs.sensors,
        jobs=location.defs.jobs,
        resources=resources,
    )


@contextmanager
def queued_instance(overrides: dict | None = None):
    with instance_for_test(overrides={**QUEUED_COORDINATOR, **(overrides or {})}) as instance:
        yield instance


def _origin(frequency: str) -> RemoteJobOrigin:
    return RemoteJobOrigin(
        repository_origin=RemoteRepositoryOrigin(
            code_location_origin=InProcessCodeLocationOrigin(
                loadable_target_origin=LoadableTargetOrigin(module_name="compliance_reports.definitions"),
                location_name="compliance_reports",
            ),
            repository_name="__repository__",
        ),
        job_name=f"{frequency}_reports_job",
    )


def add_queued_run(
    instance: DagsterInstance, report_id: str, period: str, frequency: str, trigger: str = "schedule"
) -> str:
    """A run as the daemon records it when a schedule launches it: queued, partition-tagged."""
    run_id = make_new_run_id()
    instance.add_run(
        DagsterRun(
            job_name=f"{frequency}_reports_job",
            run_id=run_id,
            status=DagsterRunStatus.QUEUED,
            remote_job_origin=_origin(frequency),
            tags={
                REPORT_TAG: report_id,
                PERIOD_TAG: period,
                "dagster/partition": f"{period}|{report_id}",
                "report_id": report_id,
                "period": period,
                "frequency": frequency,
                "trigger": trigger,
            },
        )
    )
    return run_id


def requested(request) -> tuple[str, str]:
    """(report id, period) of a report run request: its partition key, period|report."""
    period, _, report_id = str(request.partition_key).partition("|")
    return report_id, period


def aware(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
