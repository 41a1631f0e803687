"""Fault matrix: the application and audit database (PostgreSQL) goes away and comes back.

The database is a cluster of the test's own on a free port (see cluster.py), stopped with
`pg_ctl -m immediate` (every connection dropped) and restarted by the test. The Dagster
instance stays up (its own SQLite storage), as when only the application database fails.
Step retries are shortened (`STEP_RETRY`) so an outage of seconds stands for one of minutes.

Budget: about 60 s (one initdb, five short outages).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from compliance_reports.operations import transient_errors
from compliance_reports.operations.transient_errors import StepRetry
from compliance_reports.orchestration.dagster_runs import PERIOD_TAG
from compliance_reports_tests.e2e.faults.cluster import Cluster, restart_when
from compliance_reports_tests.e2e.faults.pipeline import copies_by_key, days_ago, pipeline, report_doc, webhook
from compliance_reports_tests.orchestration.helpers import requested

pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def cluster():
    c = Cluster()
    yield c
    c.destroy()


@pytest.fixture
def peers(http_factory):
    return http_factory(), http_factory()  # the report's receiver, the on-call alert receiver


def _setup(cluster, peers, **schedule):
    siem, oncall = peers
    return pipeline(cluster.create_database(), [webhook("siem", siem.url), webhook("oncall", oncall.url)],
                    [report_doc("daily", ["siem"], ["oncall"], **schedule)])


def _no_alerts(p, oncall):
    assert oncall.requests == [] and p.alert_rows() == [] and p.fallback() == []


def test_report_run_outlasts_a_database_outage_with_step_retries(cluster, peers, monkeypatch):
    siem, oncall = peers
    monkeypatch.setattr(transient_errors, "STEP_RETRY", StepRetry(max_retries=6, initial_s=1, max_delay_s=2))
    with _setup(cluster, peers) as p:
        cluster.stop()
        restarted = restart_when(p.step_retried, cluster.start, delay_s=1)
        result = p.run_period("daily", days_ago(1))
        restarted.join()
        assert result.success and p.retries_of(result) >= 1
        [published] = p.publish()
        assert published.success
        assert list(copies_by_key(siem).values()) == [1]
        assert [r["status"] for r in p.rows()] == ["sent"]
        p.tick_alerts()
        _no_alerts(p, oncall)


def test_publish_outlasts_a_database_outage_with_step_retries(cluster, peers, monkeypatch):
    siem, oncall = peers
    monkeypatch.setattr(transient_errors, "STEP_RETRY", StepRetry(max_retries=6, initial_s=1, max_delay_s=2))
    with _setup(cluster, peers) as p:
        assert p.run_period("daily", days_ago(1)).success
        cluster.stop()
        restarted = restart_when(p.step_retried, cluster.start, delay_s=1)
        [published] = p.publish()
        restarted.join()
        assert published.success and p.retries_of(published) >= 1
        assert list(copies_by_key(siem).values()) == [1]
        assert [r["status"] for r in p.rows()] == ["sent"]
        p.tick_alerts()
        _no_alerts(p, oncall)


def test_long_outage_fails_the_run_and_the_schedule_retries_the_period_after_the_cool_down(
    cluster, peers, monkeypatch
):
    siem, oncall = peers
    monkeypatch.setattr(transient_errors, "STEP_RETRY", StepRetry(max_retries=2, initial_s=0.2, max_delay_s=0.4))
    with _setup(cluster, peers, max_catch_up=2) as p:
        now = datetime.now(timezone.utc)
        period = days_ago(1)
        [first] = [r for r in p.tick_schedule(now).run_requests if requested(r)[1] == period]
        cluster.stop()
        failed = p.launch(first)
        assert not failed.success and p.retries_of(failed) == 2
        failed_at = datetime.now(timezone.utc)
        # The failure sensor cannot record its reaction while the database is down: the tick
        # fails and keeps its cursor.
        cursor = p.alert_cursor
        with pytest.raises(Exception, match="OperationalError|Connection refused|could not connect"):
            p.tick_alerts()
        assert p.alert_cursor == cursor
        cluster.start()
        p.tick_alerts()  # now handled: the schedule retries the period, so nobody is alerted
        assert p.alert_cursor != cursor
        _no_alerts(p, oncall)

        early = p.tick_schedule(failed_at + timedelta(minutes=30)).run_requests
        assert not [r for r in early if requested(r)[1] == period]
        due = p.tick_schedule(failed_at + timedelta(minutes=61)).run_requests
        [retry] = [r for r in due if requested(r)[1] == period]
        assert retry.run_key == f"daily:{period}:retry1" and retry.tags["trigger"] == "retry"
        assert p.launch(retry).success
        [published] = p.publish()
        assert published.success
        assert list(copies_by_key(siem).values()) == [1]
        assert [r["status"] for r in p.rows()] == ["sent"]
        p.tick_alerts()
        _no_alerts(p, oncall)
        statuses = sorted(r.status.value for r in p.instance.get_runs() if r.tags.get(PERIOD_TAG) == period
                          and r.job_name != "publish_report_job")
        assert statuses == ["FAILURE", "SUCCESS"]


def test_database_down_while_recording_a_send(cluster, http_factory, monkeypatch):
    """The receiver accepted; the database is gone before `sent` is written."""
    monkeypatch.setattr(transient_errors, "STEP_RETRY", StepRetry(max_retries=6, initial_s=1, max_delay_s=2))
    oncall = http_factory()
    restarts = []

    def accept_then_lose_the_database(request):
        cluster.stop()
        restarts.append(cluster.restart_after(3))
        return 200

    first = http_factory(script=[accept_then_lose_the_database])
    second = http_factory()
    with pipeline(cluster.create_database(),
                  [webhook("first", first.url), webhook("second", second.url), webhook("oncall", oncall.url)],
                  [report_doc("daily", ["first", "second"], ["oncall"])]) as p:
        assert p.run_period("daily", days_ago(1)).success
        try:
            [published] = p.publish()
        finally:
            for thread in restarts:
                thread.join()
        assert published.success
        assert list(copies_by_key(first).values()) == [1] and list(copies_by_key(second).values()) == [1]
        assert sorted(r["status"] for r in p.rows()) == ["sent", "sent"]  # nothing left "sending"
        assert oncall.requests == []
