"""Fault matrix: the daemon misses slots, reports are unscheduled or requested twice, periods fail.

Schedule ticks and sensor ticks are evaluated at chosen instants on a real instance; the runs
they request are executed as the daemon launches them; the publish runs deliver to a real HTTP
receiver. A queued run stands in for the one the daemon creates for a request (`add_queued_run`,
as the daemon records it with a queued-run coordinator) where the test needs one waiting.

Budget: about 40 s.
"""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta, timezone

import pytest
from dagster import AssetKey, DagsterRunStatus

from compliance_reports.config import store as config_store
from compliance_reports_tests.e2e.faults.pipeline import (
    copies_by_key,
    days_ago,
    pipeline,
    report_doc,
    utc_today,
    webhook,
)
from compliance_reports_tests.orchestration.helpers import add_queued_run, requested

pytestmark = [pytest.mark.slow]
ASSET = AssetKey("daily_compliance_report")


def at(day_offset: int, hour: int, minute: int = 0) -> datetime:
    """An instant relative to today (UTC): at(0, 3) is 03:00 today."""
    return datetime.combine(utc_today() + timedelta(days=day_offset), time(hour, minute), timezone.utc)


@pytest.fixture
def peers(http_factory):
    return http_factory(), http_factory()  # the report's receiver, the on-call alert receiver


def _setup(sqlite_url, peers, tmp_path=None, **kwargs):
    siem, oncall = peers
    reports = kwargs.pop("reports")
    return pipeline(sqlite_url, [webhook("siem", siem.url), webhook("oncall", oncall.url)], reports, **kwargs)


def _no_alerts(p, oncall):
    p.tick_alerts()
    assert oncall.requests == [] and p.alert_rows() == [] and p.fallback() == []


def test_daemon_down_across_a_slot_runs_the_missed_period_once(sqlite_url, peers):
    siem, oncall = peers
    report = report_doc("daily", ["siem"], ["oncall"], start_date=days_ago(1), max_catch_up=1)
    with _setup(sqlite_url, peers, reports=[report]) as p:
        before = p.tick_schedule(at(0, 0) - timedelta(minutes=5))
        assert not before.run_requests  # the first slot (today 00:00) has not passed
        # The daemon is down from 23:55 to 03:00: no tick at the slot. The first tick after:
        [request] = p.tick_schedule(at(0, 3)).run_requests
        assert (request.run_key, request.tags["trigger"]) == (f"daily:{days_ago(1)}", "schedule")
        assert p.launch(request).success
        [published] = p.publish()
        assert published.success
        assert not p.tick_schedule(at(0, 3, 5)).run_requests
        assert list(copies_by_key(siem).values()) == [1]
        assert [(r["period"], r["status"]) for r in p.rows()] == [(days_ago(1), "sent")]
        _no_alerts(p, oncall)


def test_catch_up_requests_max_catch_up_periods_and_leaves_older_ones_missing(sqlite_url, peers):
    siem, oncall = peers
    report = report_doc("daily", ["siem"], ["oncall"], start_date=days_ago(10), max_catch_up=3)
    with _setup(sqlite_url, peers, reports=[report]) as p:
        # Down for ten days; the first tick back requests the last three periods only.
        requests = p.tick_schedule(at(0, 1)).run_requests
        assert sorted((requested(r)[1], r.tags["trigger"]) for r in requests) == [
            (days_ago(3), "catch_up"), (days_ago(2), "catch_up"), (days_ago(1), "schedule")]
        assert all(p.launch(r).success for r in requests)
        assert all(r.success for r in p.publish())
        assert not p.tick_schedule(at(0, 1, 5)).run_requests
        assert p.instance.get_materialized_partitions(ASSET) == {
            f"{days_ago(n)}|daily" for n in (1, 2, 3)}  # days_ago(4) and older stay missing
        assert sorted(copies_by_key(siem).values()) == [1, 1, 1]  # one copy per period
        assert sorted(r["period"] for r in p.rows() if r["status"] == "sent") == [days_ago(n) for n in (3, 2, 1)]
        _no_alerts(p, oncall)


def test_unschedule_with_a_queued_run_cancels_it_and_delivers_nothing(sqlite_url, peers):
    siem, oncall = peers
    report = report_doc("daily", ["siem"], ["oncall"], max_catch_up=1)
    with _setup(sqlite_url, peers, reports=[report]) as p:
        [request] = p.tick_schedule(at(0, 1)).run_requests
        queued = add_queued_run(p.instance, *requested(request), "daily", trigger="schedule")
        config_store.request(p.engine, "daily", "unschedule", actor="operator")
        p.tick_requests()
        assert p.instance.get_run_by_id(queued).status == DagsterRunStatus.CANCELED
        assert config_store.get_report(p.engine, "daily").enabled is False
        assert not p.tick_schedule(at(0, 1, 5)).run_requests
        assert p.publish() == []
        assert siem.requests == [] and p.rows() == []
        _no_alerts(p, oncall)


def test_requests_for_a_period_in_flight_are_coalesced(sqlite_url, peers):
    siem, oncall = peers
    report = report_doc("daily", ["siem"], ["oncall"], max_catch_up=1)
    period = days_ago(1)
    with _setup(sqlite_url, peers, reports=[report]) as p:
        first = config_store.request(p.engine, "daily", "run_now", period=period, actor="a")
        second = config_store.request(p.engine, "daily", "run_now", period=period, actor="b")
        [request] = p.tick_requests().run_requests
        assert request.run_key == f"request:{first}"
        # The daemon queues the requested run; meanwhile a third run_now and the schedule's tick.
        queued = add_queued_run(p.instance, "daily", period, "daily", trigger="request")
        third = config_store.request(p.engine, "daily", "run_now", period=period, actor="c")
        assert not p.tick_requests().run_requests
        assert not p.tick_schedule(at(0, 1)).run_requests
        results = {r["id"]: json.loads(r["result"]) for r in config_store.list_requests(p.engine)}
        assert results[second]["coalesced_with"] == f"request:{first}"
        assert results[third]["coalesced_with"] == queued
        # The queued run is the request's run: it runs once and is delivered once.
        p.instance.delete_run(queued)
        assert p.launch(request).success
        assert [r.success for r in p.publish()] == [True]
        assert not p.tick_schedule(at(0, 1, 5)).run_requests
        assert list(copies_by_key(siem).values()) == [1]
        assert [r["status"] for r in p.rows()] == ["sent"]
        _no_alerts(p, oncall)


def test_failed_period_is_retried_then_given_up_with_one_alert(sqlite_url, peers, tmp_path, monkeypatch):
    """Every run of the period fails (its audit database has no audit_log table: not an outage,
    so no step retries); COMPLIANCE_RETRY_MAX=1 allows one re-request by the schedule."""
    siem, oncall = peers
    monkeypatch.setenv("COMPLIANCE_RETRY_MAX", "1")
    report = report_doc("daily", ["siem"], ["oncall"], max_catch_up=2)
    period = days_ago(1)
    broken_audit = f"sqlite:///{tmp_path / 'no-audit-table.db'}"
    with _setup(sqlite_url, peers, reports=[report], audit_url=broken_audit) as p:
        [first] = [r for r in p.tick_schedule(datetime.now(timezone.utc)).run_requests if requested(r)[1] == period]
        failed = p.launch(first)
        assert not failed.success and p.retries_of(failed) == 0
        first_failed_at = datetime.now(timezone.utc)
        p.tick_alerts()
        assert oncall.requests == []  # the schedule will retry it: nobody is alerted yet

        [retry] = [r for r in p.tick_schedule(first_failed_at + timedelta(minutes=61)).run_requests
                   if requested(r)[1] == period]
        assert (retry.run_key, retry.tags["trigger"]) == (f"daily:{period}:retry1", "retry")
        assert not p.launch(retry).success
        p.tick_alerts()
        [alert] = oncall.requests
        payload = alert.json()
        assert (payload["kind"], payload["period"]) == ("gave_up", period)
        assert "failed 2 times (1 retries by the schedule)" in payload["error_summary"]
        assert "no such table: audit_log" in payload["error_summary"]

        later = p.tick_schedule(datetime.now(timezone.utc) + timedelta(hours=3)).run_requests
        assert not [r for r in later if requested(r)[1] == period]
        p.tick_alerts()
        p.sweep()
        assert len(oncall.requests) == 1
        assert siem.requests == [] and p.rows() == []
        assert [(r["artifact_sha256"], r["status"]) for r in p.alert_rows()] == [("failure:gave_up", "sent")]
        assert p.fallback() == []
