"""Schedule ticks on a real Dagster instance: exactly the due partitions, once."""

from __future__ import annotations

import pytest
from dagster import AssetKey, build_schedule_context
from dagster._core.definitions.partitions.context import partition_loading_context

from compliance_reports.config import store as config_store
from compliance_reports.config.models import ReportConfig
from compliance_reports.orchestration.report_partitions import report_id_partitions
from compliance_reports_tests.orchestration.helpers import (
    add_queued_run,
    aware,
    location_for_tests,
    queued_instance,
    requested,
)


def _report(report_id: str, enabled: bool = True, **schedule) -> ReportConfig:
    return ReportConfig.model_validate(
        {
            "id": report_id,
            "name": f"Report {report_id}",
            "organization_id": "org-1",
            "report_type": "general_compliance",
            "schedule": schedule,
            "formats": ["json"],
            "enabled": enabled,
        }
    )


@pytest.fixture
def configured(engine):
    config_store.apply_reports(
        engine,
        [
            _report("berlin-daily", frequency="daily", time="06:00", timezone="Europe/Berlin", max_catch_up=3),
            _report("kiritimati-daily", frequency="daily", time="00:30", timezone="Pacific/Kiritimati", max_catch_up=1),
            _report("off-daily", frequency="daily", time="00:00", timezone="UTC", enabled=False),
            _report("ny-weekly", frequency="weekly", time="02:30", timezone="America/New_York", day_of_week="sunday"),
        ],
    )
    return engine


def _tick(defs, instance, frequency: str, when: str):
    schedule = defs.get_repository_def().get_schedule_def(f"{frequency}_reports_schedule")
    # The context must be closed, or a stale instance reference outlives the test.
    with build_schedule_context(
        instance=instance,
        scheduled_execution_time=aware(when),
        repository_def=defs.get_repository_def(),
        resources=defs.resources,
    ) as context:
        return schedule.evaluate_tick(context)


def test_daily_tick_requests_exactly_the_due_partitions_with_keys_and_tags(configured, sqlite_url):
    defs = location_for_tests(sqlite_url)
    with queued_instance() as instance:
        # 06:05 UTC on 2026-11-28 = 07:05 in Berlin (slot 06:00 passed) and 20:05 in Kiritimati.
        data = _tick(defs, instance, "daily", "2026-11-28T06:05:00Z")
        requests = sorted(data.run_requests, key=lambda r: r.run_key)
        assert [r.run_key for r in requests] == [
            "berlin-daily:2026-11-25",
            "berlin-daily:2026-11-26",
            "berlin-daily:2026-11-27",
            "kiritimati-daily:2026-11-27",
        ]
        assert [str(r.partition_key) for r in requests] == [
            "2026-11-25|berlin-daily",
            "2026-11-26|berlin-daily",
            "2026-11-27|berlin-daily",
            "2026-11-27|kiritimati-daily",
        ]
        # Report and period are the partition; the frequency is the job's tag.
        own = {k: v for k, v in requests[2].tags.items() if not k.startswith("dagster/")}
        assert own == {"organization_id": "org-1", "trigger": "schedule"}
        assert requests[2].tags["dagster/partition/period"] == "2026-11-27"
        assert requests[0].tags["trigger"] == "catch_up"
        assert "off-daily" not in {requested(r)[0] for r in requests}
        registered = instance.get_dynamic_partitions(report_id_partitions["daily"].name)
        assert "berlin-daily" in registered and "off-daily" not in registered


def test_a_tick_resolves_its_requests_without_a_storage_query_per_request(configured, sqlite_url, monkeypatch):
    """Dagster checks an unresolved request's dynamic partition with one storage query each
    (1.5 s of a 500-request tick); the tick's requests come resolved, with the tags and run
    config Dagster would give them."""
    from dagster._core.storage.event_log.sql_event_log import SqlEventLogStorage

    defs = location_for_tests(sqlite_url)
    job = defs.get_repository_def().get_job("daily_reports_job")
    lookups = []
    original = SqlEventLogStorage.has_dynamic_partition
    monkeypatch.setattr(SqlEventLogStorage, "has_dynamic_partition",
                        lambda self, *args: lookups.append(args) or original(self, *args))
    with queued_instance() as instance:
        data = _tick(defs, instance, "daily", "2026-11-28T06:05:00Z")
        assert len(data.run_requests) == 4
        assert lookups == []
        for request in data.run_requests:
            key = str(request.partition_key)
            assert request.tags.items() >= job.get_tags_for_partition_key(key, None).items()
            assert request.tags["dagster/partition"] == key
            assert request.run_config == job.get_run_config_for_partition_key(key)
            with partition_loading_context(effective_dt=aware("2026-11-28T06:05:00Z"),
                                           dynamic_partitions_store=instance) as context:
                job.validate_partition_key(key, selected_asset_keys=None, context=context)


def test_a_period_before_the_first_partition_is_not_requested_and_the_tick_goes_on(configured, sqlite_url):
    config_store.apply_reports(configured, [_report("early-daily", frequency="daily", time="00:00",
                                                    timezone="UTC", max_catch_up=5)])
    defs = location_for_tests(sqlite_url)
    with queued_instance() as instance:
        # the daily partitions start on 2025-01-01: the catch-up of 2025-01-02 reaches before it
        data = _tick(defs, instance, "daily", "2025-01-02T00:05:00Z")
        periods = sorted(requested(r)[1] for r in data.run_requests if requested(r)[0] == "early-daily")
        assert periods == ["2025-01-01"]


def test_period_ahead_of_utc_is_requestable_before_the_utc_day_ends(configured, sqlite_url):
    from dagster import AssetKey

    defs = location_for_tests(sqlite_url)
    with queued_instance() as instance:
        # Kiritimati (UTC+14): local 2026-11-28 ends at 2026-11-28T10:00Z and its 00:30 slot
        # is at 10:30Z, while the UTC day 2026-11-28 is still open.
        data = _tick(defs, instance, "daily", "2026-11-28T10:35:00Z")
        request = next(r for r in data.run_requests if requested(r)[0] == "kiritimati-daily")
        assert request.run_key == "kiritimati-daily:2026-11-28"
        partitions_def = defs.resolve_assets_def(AssetKey("daily_compliance_report")).partitions_def
        with partition_loading_context(
            effective_dt=aware("2026-11-28T10:35:00Z"), dynamic_partitions_store=instance
        ):
            assert partitions_def.has_partition_key("2026-11-28|kiritimati-daily")
            assert not partitions_def.has_partition_key("2026-11-29|kiritimati-daily")


def test_second_tick_requests_nothing_new_and_says_why(configured, sqlite_url):
    defs = location_for_tests(sqlite_url)
    with queued_instance() as instance:
        first = _tick(defs, instance, "daily", "2026-11-28T06:05:00Z")
        for request in first.run_requests:
            add_queued_run(instance, *requested(request), "daily")
        second = _tick(defs, instance, "daily", "2026-11-28T06:10:00Z")
        assert not second.run_requests
        assert "has run or is running" in second.skip_message


def test_a_large_catch_up_is_requested_over_several_ticks_newest_first(configured, sqlite_url, monkeypatch):
    monkeypatch.setenv("COMPLIANCE_MAX_RUNS_PER_TICK", "2")
    defs = location_for_tests(sqlite_url)
    with queued_instance() as instance:
        first = _tick(defs, instance, "daily", "2026-11-28T06:05:00Z")
        # four runs are due: the latest slot's periods first, then the newest catch-up
        assert sorted(r.run_key for r in first.run_requests) == ["berlin-daily:2026-11-27", "kiritimati-daily:2026-11-27"]
        for request in first.run_requests:
            add_queued_run(instance, *requested(request), "daily")
        second = _tick(defs, instance, "daily", "2026-11-28T06:10:00Z")
        assert sorted(r.run_key for r in second.run_requests) == ["berlin-daily:2026-11-25", "berlin-daily:2026-11-26"]


def test_failed_period_is_retried_after_the_cool_down_with_its_own_run_key(configured, sqlite_url, monkeypatch):
    from datetime import datetime, timedelta, timezone

    from dagster import DagsterRunStatus

    monkeypatch.setenv("COMPLIANCE_RETRY_COOLDOWN_MIN", "60")
    monkeypatch.setenv("COMPLIANCE_RETRY_MAX", "1")
    config_store.apply_reports(configured, [_report("utc-daily", frequency="daily", time="00:00", timezone="UTC",
                                                    max_catch_up=3)])
    defs = location_for_tests(sqlite_url)
    failed_at = datetime.now(timezone.utc)
    period = (failed_at - timedelta(days=2)).date().isoformat()  # in the look-back at every tick below

    def utc_keys(at):
        data = _tick(defs, instance, "daily", at.isoformat())
        return {r.run_key: r.tags["trigger"] for r in data.run_requests if requested(r)[0] == "utc-daily"}

    with queued_instance() as instance:
        run_id = add_queued_run(instance, "utc-daily", period, "daily")
        instance.report_run_failed(instance.get_run_by_id(run_id))
        assert instance.get_run_by_id(run_id).status == DagsterRunStatus.FAILURE

        during = utc_keys(failed_at + timedelta(minutes=30))
        assert not any(key.startswith(f"utc-daily:{period}") for key in during)
        after = utc_keys(failed_at + timedelta(minutes=61))
        assert after[f"utc-daily:{period}:retry1"] == "retry"
        assert f"utc-daily:{period}" not in after

        # The retry is queued: coalesced, nothing more for that period.
        retry = add_queued_run(instance, "utc-daily", period, "daily", trigger="retry")
        queued = utc_keys(failed_at + timedelta(minutes=62))
        assert not any(key.startswith(f"utc-daily:{period}") for key in queued)
        # It fails too: with COMPLIANCE_RETRY_MAX=1 the period is left failed.
        instance.report_run_failed(instance.get_run_by_id(retry))
        later = utc_keys(datetime.now(timezone.utc) + timedelta(hours=3))
        assert not any(key.startswith(f"utc-daily:{period}") for key in later)


def test_disabled_report_is_never_requested(configured, sqlite_url):
    defs = location_for_tests(sqlite_url)
    config_store.set_enabled(configured, "berlin-daily", False)
    config_store.set_enabled(configured, "kiritimati-daily", False)
    with queued_instance() as instance:
        data = _tick(defs, instance, "daily", "2026-11-28T06:05:00Z")
        assert not data.run_requests
        assert "no enabled daily reports" in data.skip_message


def test_weekly_sunday_slot_waits_for_its_time_in_new_york(configured, sqlite_url):
    defs = location_for_tests(sqlite_url)
    with queued_instance() as instance:
        # Sunday 2026-11-29 02:30 EST = 07:30 UTC. Before it nothing new is due for that week.
        before = _tick(defs, instance, "weekly", "2026-11-29T07:25:00Z")
        after = _tick(defs, instance, "weekly", "2026-11-29T07:35:00Z")
        new = {r.run_key for r in after.run_requests} - {r.run_key for r in before.run_requests}
        # The Sunday slot covers the last week that has ended: Monday 2026-11-16 to Sunday 11-22.
        assert new == {"ny-weekly:2026-11-16"}


@pytest.mark.postgres
def test_schedule_tick_on_a_postgres_backed_instance(pg_database):
    """The same tick with dagster-postgres run/event/schedule storage and PostgreSQL app tables."""
    from compliance_reports.db import migrate
    from compliance_reports.db.engine import make_engine

    app_url = pg_database()
    engine = make_engine(app_url)
    migrate.upgrade_all(engine, engine)
    config_store.apply_reports(
        engine,
        [_report("berlin-daily", frequency="daily", time="06:00", timezone="Europe/Berlin", max_catch_up=3)],
    )
    defs = location_for_tests(app_url)
    instance_url = pg_database()
    try:
        with queued_instance({"storage": {"postgres": {"postgres_url": instance_url}}}) as instance:
            assert type(instance.run_storage).__name__ == "PostgresRunStorage"
            first = _tick(defs, instance, "daily", "2026-11-28T06:05:00Z")
            assert sorted(r.run_key for r in first.run_requests) == [
                "berlin-daily:2026-11-25", "berlin-daily:2026-11-26", "berlin-daily:2026-11-27",
            ]
            for request in first.run_requests:
                add_queued_run(instance, *requested(request), "daily")
            second = _tick(defs, instance, "daily", "2026-11-28T06:10:00Z")
            assert not second.run_requests
    finally:
        engine.dispose()


@pytest.mark.parametrize("frequency", ["daily", "weekly", "monthly", "quarterly"])
def test_each_frequency_has_a_named_job_that_its_schedule_targets(sqlite_url, frequency):
    defs = location_for_tests(sqlite_url)
    job = defs.resolve_job_def(f"{frequency}_reports_job")
    assert job.partitions_def is not None and job.tags["frequency"] == frequency
    assert job.asset_layer.executable_asset_keys == {AssetKey(f"{frequency}_compliance_report")}
    assert defs.resolve_schedule_def(f"{frequency}_reports_schedule").job_name == f"{frequency}_reports_job"
