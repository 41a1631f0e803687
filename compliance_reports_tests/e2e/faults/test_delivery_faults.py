"""Fault matrix: receivers that refuse, throttle or vanish; concurrent sweeps; altered evidence.

Two levels, both with real peers (aiosmtpd, HTTP receivers, moto's S3 server):
- the delivery core (`deliver_publication`, `retry_due`) with a fake clock, so backoffs and
  Retry-After of hours pass instantly (`FakeClock.sleep` advances time);
- the code location (report run, publish run, failure sensor, sweep) for what involves runs:
  throttling handed to the sweep, alerts through the failing destination, the artifact store down.

Budget: about 50 s.
"""

from __future__ import annotations

import email
import threading
from datetime import datetime, timedelta, timezone

import pytest
from moto.server import ThreadedMotoServer

from compliance_reports.artifacts.s3 import make_s3_client
from compliance_reports.config.models import EmailDestination, WebhookDestination
from compliance_reports.delivery import ledger
from compliance_reports.delivery.dispatcher import deliver_publication, retry_due
from compliance_reports.operations import transient_errors
from compliance_reports.operations.transient_errors import StepRetry
from compliance_reports_tests.delivery.conftest import FakeClock, make_publication
from compliance_reports_tests.e2e.faults.cluster import restart_when
from compliance_reports_tests.e2e.faults.pipeline import (

    copies_by_key,
    days_ago,
    mail,
    mails_by_recipient,
    pipeline,
    report_doc,
    webhook,
)
from compliance_reports_tests.peers import free_port

pytestmark = [pytest.mark.slow]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def publication(tmp_path):
    return make_publication(tmp_path / "artifacts" / "hipaa-weekly" / "2026-11-23")


def _hook(name: str, url: str, **retry) -> WebhookDestination:
    return WebhookDestination.model_validate({"type": "webhook", **webhook(name, url, **retry)})


def _loader(publication):
    return lambda report_id, period, sha: publication


def _sweeps(engine, publication, dests, alert_dests, clock, hours: int):
    """The retry sweep once an hour for `hours` hours."""
    by_name = {d.name: d for d in dests}
    for _ in range(hours):
        clock.advance(3600)
        retry_due(engine, _loader(publication), by_name.__getitem__, now_fn=clock.now, sleep_fn=clock.sleep,
                  load_alert_destinations=lambda rid: alert_dests)


def _alerts(engine):
    return [r for r in ledger.list_rows(engine) if r["recipient"].startswith("alert:")]


# ---------------------------------------------------------------- receivers that refuse or throttle


def test_500_500_200_is_delivered_once_on_the_third_attempt(engine, http_factory, publication, clock):
    siem, oncall = http_factory(script=[500, 500, 200]), http_factory()
    (outcome,) = deliver_publication(engine, publication, [_hook("siem", siem.url)], now_fn=clock.now,
                                     sleep_fn=clock.sleep, alert_destinations=[_hook("oncall", oncall.url)])
    assert (outcome.status, outcome.attempts) == ("sent", 3)
    assert list(copies_by_key(siem).values()) == [3]  # three attempts, one idempotency key: one delivery
    assert oncall.requests == [] and _alerts(engine) == []


def test_500_forever_ends_dead_with_one_alert(engine, http_factory, publication, clock):
    siem, oncall = http_factory(default=500), http_factory()
    dest, alert = _hook("siem", siem.url), _hook("oncall", oncall.url)
    deliver_publication(engine, publication, [dest], now_fn=clock.now, sleep_fn=clock.sleep,
                        alert_destinations=[alert])
    _sweeps(engine, publication, [dest], [alert], clock, hours=30)  # past any give-up time
    [row] = [r for r in ledger.list_rows(engine) if r["destination"] == "siem"]
    assert row["status"] == "dead"
    copies = copies_by_key(siem)
    assert list(copies) == [row["id"]] and copies[row["id"]] == row["attempts"] >= 3
    [received] = oncall.requests
    assert received.json()["kind"] == "delivery" and "HTTP 500" in received.json()["error_summary"]


def test_400_is_not_retried_and_is_alerted_once(engine, http_factory, publication, clock):
    siem, oncall = http_factory(default=400), http_factory()
    dest, alert = _hook("siem", siem.url), _hook("oncall", oncall.url)
    (outcome,) = deliver_publication(engine, publication, [dest], now_fn=clock.now, sleep_fn=clock.sleep,
                                     alert_destinations=[alert])
    _sweeps(engine, publication, [dest], [alert], clock, hours=3)
    assert (outcome.status, outcome.attempts) == ("dead", 1)
    assert list(copies_by_key(siem).values()) == [1]
    assert [r.json()["kind"] for r in oncall.requests] == ["delivery"]


def test_429_with_a_short_retry_after_waits_inside_the_run(engine, http_factory, publication, clock):
    siem, oncall = http_factory(script=[(429, {"Retry-After": "2"}), 200]), http_factory()
    (outcome,) = deliver_publication(engine, publication, [_hook("siem", siem.url)], now_fn=clock.now,
                                     sleep_fn=clock.sleep, alert_destinations=[_hook("oncall", oncall.url)])
    assert (outcome.status, outcome.attempts) == ("sent", 2)
    assert 2.0 in clock.sleeps  # the server's Retry-After, honoured
    assert list(copies_by_key(siem).values()) == [2]
    assert oncall.requests == [] and _alerts(engine) == []


def test_429_with_a_long_retry_after_goes_to_the_sweep_and_alerts_nobody(sqlite_url, http_factory):
    siem, oncall = http_factory(script=[(429, {"Retry-After": "3600"})]), http_factory()
    with pipeline(sqlite_url, [webhook("siem", siem.url), webhook("oncall", oncall.url)],
                  [report_doc("daily", ["siem"], ["oncall"])]) as p:
        assert p.run_period("daily", days_ago(1)).success
        [published] = p.publish()
        assert published.success  # handed to the sweep: not a failed run
        [row] = p.rows()
        assert row["status"] == "failed" and row["next_attempt_at"] >= datetime.now(timezone.utc) + timedelta(minutes=59)
        p.tick_alerts()
        assert not p.sweep_at(datetime.now(timezone.utc) + timedelta(minutes=30))  # not due yet
        [swept] = p.sweep_at(datetime.now(timezone.utc) + timedelta(minutes=61))
        assert swept.status == "sent"
        assert list(copies_by_key(siem).values()) == [2]
        assert [r["status"] for r in p.rows()] == ["sent"]
        p.tick_alerts()
        assert oncall.requests == [] and p.alert_rows() == [] and p.fallback() == []


def test_one_550_of_four_recipients(engine, smtp_factory, http_factory, publication, clock):
    smtp, oncall = smtp_factory(), http_factory()
    smtp.recorder.reject = {"c@example.org"}
    dest = EmailDestination.model_validate({"type": "email", **mail(
        "mail", smtp.port, ["a@example.org", "b@example.org", "c@example.org", "d@example.org"])})
    alert = _hook("oncall", oncall.url)
    outcomes = deliver_publication(engine, publication, [dest], now_fn=clock.now, sleep_fn=clock.sleep,
                                   alert_destinations=[alert])
    assert {o.recipient: o.status for o in outcomes} == {
        "a@example.org": "sent", "b@example.org": "sent", "c@example.org": "dead", "d@example.org": "sent"}
    _sweeps(engine, publication, [dest], [alert], clock, hours=2)
    deliver_publication(engine, publication, [dest], now_fn=clock.now, sleep_fn=clock.sleep,
                        alert_destinations=[alert])  # published again: nothing new
    assert mails_by_recipient(smtp) == {"a@example.org": 1, "b@example.org": 1, "d@example.org": 1}
    [received] = oncall.requests
    assert "c@example.org" in received.json()["error_summary"] and "550" in received.json()["error_summary"]


@pytest.mark.parametrize("sweeps", [2, 3])
@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_concurrent_sweeps_send_each_row_once(request, backend, sweeps, http_factory, publication, clock):
    engine = request.getfixturevalue("engine" if backend == "sqlite" else "pg_engine")
    siem = http_factory(default=500)
    dests = [_hook(f"siem-{n}", siem.url) for n in range(6)]
    deliver_publication(engine, publication, dests, now_fn=clock.now, in_run_retries=False)
    assert len(siem.requests) == 6
    siem.default, siem.delay_s = (200, {}, b"ok"), 0.2
    clock.advance(3600)
    barrier = threading.Barrier(sweeps)
    results: list = []
    by_name = {d.name: d for d in dests}

    def sweep():
        barrier.wait()
        results.append(retry_due(engine, _loader(publication), by_name.__getitem__, now_fn=clock.now,
                                 sleep_fn=lambda s: None))

    threads = [threading.Thread(target=sweep) for _ in range(sweeps)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sum(1 for run in results for o in run if o.status == "sent") == 6
    sent = copies_by_key(siem)
    assert len(sent) == 6 and all(n == 2 for n in sent.values())  # the failed first try + one send each
    assert {r["status"] for r in ledger.list_rows(engine)} == {"sent"}


def test_stored_file_altered_before_a_sweep_is_never_sent(engine, http_factory, publication, clock):
    siem, oncall = http_factory(script=[500]), http_factory()
    dest, alert = _hook("siem", siem.url), _hook("oncall", oncall.url)
    deliver_publication(engine, publication, [dest], now_fn=clock.now, in_run_retries=False)
    publication.files[0].path.write_bytes(b"altered after export")
    _sweeps(engine, publication, [dest], [alert], clock, hours=2)
    [row] = [r for r in ledger.list_rows(engine) if r["destination"] == "siem"]
    assert row["status"] == "dead" and "sha256" in row["last_error"]
    assert list(copies_by_key(siem).values()) == [1]  # only the attempt before the change
    [received] = oncall.requests
    assert "siem" in received.json()["error_summary"]


# ---------------------------------------------------------------- alerts whose channel is the failing one


@pytest.mark.parametrize("fallback", ["file", "destination"])
def test_failure_alert_through_the_failing_destination_reaches_the_fallback(
    sqlite_url, smtp_factory, http_factory, monkeypatch, fallback
):
    smtp, pager = smtp_factory(), http_factory()
    smtp.recorder.reject = {"officer@example.org"}  # the report's mail and its alerts fail alike
    if fallback == "destination":
        monkeypatch.setenv("COMPLIANCE_ALERT_FALLBACK", "pager")
    with pipeline(sqlite_url, [mail("mail", smtp.port, ["officer@example.org"]), webhook("pager", pager.url)],
                  [report_doc("daily", ["mail"], ["mail"])]) as p:
        assert p.run_period("daily", days_ago(1)).success
        [published] = p.publish()
        assert not published.success  # a dead delivery: the run says so
        p.tick_alerts()  # one incident, one alert: no run alert on top of the delivery alert
        p.sweep()
        assert smtp.messages == []
        assert [r["status"] for r in p.rows()] == ["dead"]
        if fallback == "file":
            [entry] = p.fallback()
            assert (entry["kind"], entry["report_id"], entry["period"]) == ("delivery", "daily", days_ago(1))
            assert "officer@example.org" in entry["error_summary"] and pager.requests == []
        else:
            [received] = pager.requests
            assert received.json()["kind"] == "delivery" and p.fallback() == []
        assert {r["destination"] for r in p.alert_rows()} == ({"mail"} if fallback == "file" else {"mail", "pager"})


# ---------------------------------------------------------------- the artifact store goes away


def test_publish_outlasts_an_artifact_store_outage(sqlite_url, http_factory, monkeypatch):
    siem = http_factory()
    port = free_port()
    monkeypatch.setattr(transient_errors, "STEP_RETRY", StepRetry(max_retries=6, initial_s=1, max_delay_s=2))
    for name, value in {"COMPLIANCE_ARTIFACT_PROVIDER": "s3", "COMPLIANCE_ARTIFACT_BUCKET": "fault-artifacts",
                        "COMPLIANCE_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    servers = [ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)]
    servers[0].start()
    try:
        make_s3_client(f"http://127.0.0.1:{port}").create_bucket(Bucket="fault-artifacts")
        with pipeline(sqlite_url, [webhook("siem", siem.url)], [report_doc("daily", ["siem"])]) as p:
            assert p.run_period("daily", days_ago(1)).success
            servers[0].stop()  # the S3 endpoint goes away (its objects stay in moto's memory)

            def back_up():
                servers.append(ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False))
                servers[-1].start()

            restarted = restart_when(p.step_retried, back_up, delay_s=1)
            [published] = p.publish()
            restarted.join()
            assert published.success and p.retries_of(published) >= 1
            assert list(copies_by_key(siem).values()) == [1]
            assert [r["status"] for r in p.rows()] == ["sent"]
    finally:
        servers[-1].stop()


def test_publish_failed_by_a_long_artifact_store_outage_is_requested_again_after_the_cool_down(
        sqlite_url, http_factory, monkeypatch):
    """The store is down longer than the step retries: the publish run fails, nobody is alerted
    (it will be retried), and the publish sensor requests it again once the cool-down passed."""
    siem, oncall = http_factory(), http_factory()
    port = free_port()
    monkeypatch.setattr(transient_errors, "STEP_RETRY", StepRetry(max_retries=1, initial_s=0.2, max_delay_s=0.2))
    for name, value in {"COMPLIANCE_ARTIFACT_PROVIDER": "s3", "COMPLIANCE_ARTIFACT_BUCKET": "fault-artifacts",
                        "COMPLIANCE_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "testing",
                        "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
                        "COMPLIANCE_RETRY_COOLDOWN_MIN": "60"}.items():
        monkeypatch.setenv(name, value)
    servers = [ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)]
    servers[0].start()
    try:
        make_s3_client(f"http://127.0.0.1:{port}").create_bucket(Bucket="fault-artifacts")
        with pipeline(sqlite_url, [webhook("siem", siem.url), webhook("oncall", oncall.url)],
                      [report_doc("daily", ["siem"], notify=["oncall"])]) as p:
            assert p.run_period("daily", days_ago(1)).success
            servers[0].stop()
            [failed] = p.publish()
            assert not failed.success and siem.requests == []
            p.tick_alerts()
            assert p.alert_rows() == [] and oncall.requests == []  # it will be retried: no alert
            servers.append(ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False))
            servers[-1].start()
            assert p.publish() == []  # the cool-down has not passed
            monkeypatch.setenv("COMPLIANCE_RETRY_COOLDOWN_MIN", "0")
            [retried] = p.publish()
            assert retried.success and retried.dagster_run.tags["trigger"] == "retry"
            assert p.publish() == []  # published: never requested again
            assert list(copies_by_key(siem).values()) == [1]
            assert [r["status"] for r in p.rows()] == ["sent"]
            p.tick_alerts()
            assert p.alert_rows() == [] and oncall.requests == []
    finally:
        servers[-1].stop()


# ---------------------------------------------------------------- the delivery core's half (issue 13)


def test_smtp_down_during_a_publish_then_up_is_delivered_by_the_sweep(engine, publication, clock):
    from aiosmtpd.controller import Controller

    from compliance_reports_tests.peers import SMTPRecorder

    port = free_port()
    dest = EmailDestination.model_validate({"type": "email", **mail("mail", port, ["officer@example.org"])})
    deliver_publication(engine, publication, [dest], now_fn=clock.now, sleep_fn=clock.sleep,
                        alert_destinations=[dest])
    recorder = SMTPRecorder()
    server = Controller(recorder, hostname="127.0.0.1", port=port)
    server.start()
    try:
        _sweeps(engine, publication, [dest], [dest], clock, hours=2)
    finally:
        server.stop()
    subjects = [email.message_from_bytes(m["data"])["Subject"] for m in recorder.messages]
    reports = [s for s in subjects if "failed for period" not in s]  # alerts, if any, aside
    assert len(reports) == 1 and all(m["rcpt_tos"] == ["officer@example.org"] for m in recorder.messages)
    assert [r["status"] for r in ledger.list_rows(engine) if not r["recipient"].startswith("alert:")] == ["sent"]


def test_second_run_of_a_period_delivers_nothing_new(sqlite_url, http_factory):
    siem = http_factory()
    with pipeline(sqlite_url, [webhook("siem", siem.url)], [report_doc("daily", ["siem"])]) as p:
        for _ in range(2):
            assert p.run_period("daily", days_ago(1)).success
            assert all(r.success for r in p.publish())
        assert list(copies_by_key(siem).values()) == [1]


def test_re_run_never_overwrites_delivered_evidence(sqlite_url):
    from sqlalchemy import insert

    from compliance_reports.db.schema import audit_log
    from compliance_reports.settings import load_settings

    archive = load_settings().storage_root / "archive"
    storage = {"name": "archive", "type": "storage", "provider": "local", "base_path": "archive"}
    with pipeline(sqlite_url, [storage], [report_doc("daily", ["archive"])]) as p:
        assert p.run_period("daily", days_ago(1)).success and p.publish()[0].success
        first = {f: f.read_bytes() for f in archive.rglob("*.json")}
        with p.engine.begin() as conn:  # a late event: the period's content changes
            conn.execute(insert(audit_log).values(
                timestamp=datetime.fromisoformat(days_ago(1)).replace(hour=12, tzinfo=timezone.utc),
                organization_id="org-stmarys", action="auth.login", status="success"))
        assert p.run_period("daily", days_ago(1)).success and p.publish()[0].success
        assert all(path.read_bytes() == data for path, data in first.items())  # the first evidence stands
        assert len(list(archive.rglob("*.json"))) > len(first)  # the re-issue is stored beside it


