"""Failure alerts: ledger rows, one per distinct failure, with a fallback when their channel fails."""

from __future__ import annotations

import email
import os
from email import policy
from pathlib import Path

from compliance_reports.config import store as config_store
from compliance_reports.config.models import (
    EmailDestination,
    StorageDestination,
    WebhookDestination,
    parse_destination,
)
from compliance_reports.delivery import ledger
from compliance_reports.delivery.alert_fallback import read_entries
from compliance_reports.delivery.alerts import (
    AlertFields,
    alert_text,
    due_alert_rows,
    error_kind,
    notify_failure,
    send_due_alerts,
    send_failure_alert,
)
from compliance_reports.delivery.dispatcher import deliver_publication, retry_due
from compliance_reports_tests.delivery.conftest import LOCAL_RECEIVER, fast_retry
from compliance_reports_tests.peers import free_port

FIELDS = AlertFields(report_id="hipaa-weekly", period="2026-11-23", organization_id="org-1",
                     run_id="run-0042", run_url="http://dagster.local/runs/run-0042")


def mail(peer) -> EmailDestination:
    return EmailDestination.model_validate({
        "type": "email", "name": "oncall-mail", "host": peer.host, "port": peer.port, "security": "none",
        "from": "reports@example.org", "to": ["ops@example.org"], "bcc": ["sec@example.org"],
        "retry": fast_retry().model_dump(),
    })


def hook(url: str) -> WebhookDestination:
    return WebhookDestination.model_validate(
        {"type": "webhook", "name": "oncall-hook", "url": url, "retry": fast_retry().model_dump(),
         **LOCAL_RECEIVER}
    )


def test_run_failure_alert_is_sent_once_per_report_and_period(engine, smtp_server, http_factory, clock, tmp_path):
    peer = http_factory()
    share = StorageDestination.model_validate(
        {"type": "storage", "name": "share", "provider": "local", "base_path": "share"})
    dests = [mail(smtp_server), hook(peer.url), share]
    logs: list[str] = []
    outcomes = notify_failure(engine, dests, FIELDS, "ReportBuildError: audit database unreachable",
                              now_fn=clock.now, sleep_fn=clock.sleep, log=logs.append)
    assert sorted(o.status for o in outcomes) == ["sent", "sent", "sent"]
    assert any("cannot carry alerts" in line for line in logs)

    assert sorted(m["rcpt_tos"][0] for m in smtp_server.messages) == ["ops@example.org", "sec@example.org"]
    msg = email.message_from_bytes(smtp_server.messages[0]["data"], policy=policy.default)
    assert msg.get_content_type() == "text/plain" and not list(msg.iter_attachments())
    assert msg["Subject"] == "Compliance report hipaa-weekly run failed for period 2026-11-23"
    body = msg.get_content()
    assert "run-0042" in body and "http://dagster.local/runs/run-0042" in body and "unreachable" in body

    payload = peer.requests[0].json()
    assert payload["type"] == "compliance_report.failed"
    assert {k: payload[k] for k in ("report_id", "period", "run_id", "run_url")} == {
        "report_id": "hipaa-weekly", "period": "2026-11-23", "run_id": "run-0042",
        "run_url": "http://dagster.local/runs/run-0042"}
    assert payload["error_summary"] == "ReportBuildError: audit database unreachable"
    assert peer.requests[0].headers["webhook-id"] == payload["id"]

    # another failed run for the same report and period: nothing new
    again = notify_failure(engine, dests, {**FIELDS.__dict__, "run_id": "run-0043"}, "again",
                           now_fn=clock.now, sleep_fn=clock.sleep)
    assert {o.status for o in again} == {"already_sent"}
    assert len(smtp_server.messages) == 2 and len(peer.requests) == 1
    # another period does alert
    notify_failure(engine, [hook(peer.url)], {**FIELDS.__dict__, "period": "2026-11-30"}, "x", now_fn=clock.now)
    assert len(peer.requests) == 2
    rows = [r for r in ledger.list_rows(engine) if r["recipient"].startswith("alert:")]
    assert len(rows) == 4 and {r["artifact_sha256"] for r in rows} == {"failure:run"}


def test_failed_alert_is_resent_by_the_sweep_from_the_ledger(engine, http_factory, clock):
    peer = http_factory(script=[503])
    dest = hook(peer.url)
    (first,) = notify_failure(engine, [dest], FIELDS, "boom", now_fn=clock.now, in_run_retries=False)
    assert first.status == "failed"
    clock.advance(60)

    def no_publication(*args):
        raise AssertionError("an alert row needs no publication")

    (swept,) = retry_due(engine, no_publication, {"oncall-hook": dest}.__getitem__, clock.now())
    assert swept.status == "sent" and len(peer.requests) == 2
    assert peer.requests[1].json()["error_summary"] == "boom"
    assert peer.requests[0].headers["webhook-id"] == peer.requests[1].headers["webhook-id"]
    (later,) = notify_failure(engine, [dest], FIELDS, "boom", now_fn=clock.now)
    assert later.status == "already_sent" and len(peer.requests) == 2


def test_raw_alert_reports_each_result(http_factory):
    ok, bad = http_factory(), http_factory(default=500)
    results = send_failure_alert([hook(ok.url), WebhookDestination.model_validate(
        {"type": "webhook", "name": "bad", "url": bad.url, **LOCAL_RECEIVER})], FIELDS, "boom")
    assert [(r.destination, r.ok) for r in results] == [("oncall-hook", True), ("bad", False)]
    assert "HTTP 500" in results[1].detail


# ---------------------------------------------------------------- one alert per distinct failure


def _dead_mail(name: str = "mail"):
    """An email destination whose server is down (nothing listens on its port), given up on at
    its second failed attempt (the give-up time is already past then)."""
    return EmailDestination.model_validate({
        "type": "email", "name": name, "host": "127.0.0.1", "port": free_port(), "security": "none",
        "from": "reports@example.org", "to": ["officer@example.org"],
        "retry": fast_retry(max_attempts=2, give_up_after_h=1e-6).model_dump(),
    })


def test_each_distinct_dead_delivery_is_alerted_once(engine, http_factory, publication, clock):
    bad_a, bad_b, alerts = http_factory(default=400), http_factory(default=404), http_factory()
    alert_dest = hook(alerts.url)
    a = WebhookDestination.model_validate({"type": "webhook", "name": "siem-a", "url": bad_a.url,
                                           "retry": fast_retry().model_dump(), **LOCAL_RECEIVER})
    b = WebhookDestination.model_validate({"type": "webhook", "name": "siem-b", "url": bad_b.url,
                                           "retry": fast_retry().model_dump(), **LOCAL_RECEIVER})
    deliver_publication(engine, publication, [a], now_fn=clock.now, sleep_fn=clock.sleep,
                        alert_destinations=[alert_dest])
    assert [r.json()["kind"] for r in alerts.requests] == ["delivery"]
    assert "siem-a" in alerts.requests[0].json()["error_summary"]
    # A second, different dead delivery of the same report and period is a new failure: alerted.
    deliver_publication(engine, publication, [a, b], now_fn=clock.now, sleep_fn=clock.sleep,
                        alert_destinations=[alert_dest])
    assert len(alerts.requests) == 2
    second = alerts.requests[1].json()["error_summary"]
    assert "siem-b" in second and "HTTP 404" in second
    # The same failures again: nothing new.
    deliver_publication(engine, publication, [a, b], now_fn=clock.now, sleep_fn=clock.sleep,
                        alert_destinations=[alert_dest])
    assert len(alerts.requests) == 2
    assert error_kind("HTTP 500 Internal Server Error") == "http_500"
    assert error_kind("SMTP RCPT TO rejected for recipient x@y: 550 no such user") == "smtp_550"
    assert error_kind("SMTP connection problem: ConnectionRefusedError: refused") == "connection"


def test_alert_through_the_failing_destination_also_reaches_the_fallback_file(engine, publication, clock):
    mail_dest = _dead_mail()
    lines: list[str] = []
    (outcome,) = deliver_publication(engine, publication, [mail_dest], now_fn=clock.now, sleep_fn=clock.sleep,
                                     alert_destinations=[mail_dest], log=lines.append)
    assert outcome.status == "dead"
    entries = read_entries(Path(os.environ["COMPLIANCE_DATA_DIR"]) / "alerts.log")
    assert [(e["kind"], e["report_id"], e["period"]) for e in entries] == [("delivery", "hipaa-weekly", "2026-11-23")]
    assert "mail is the failing one" in entries[0]["reason"] and "officer@example.org" in entries[0]["error_summary"]
    assert any(line.startswith("ALERT delivery hipaa-weekly 2026-11-23") for line in lines)  # the event log
    [alert_row] = [r for r in ledger.list_rows(engine) if r["recipient"].startswith("alert:")]
    assert alert_row["status"] == "failed"  # still retried by the sweep through its own destination
    # Recorded once: the sweep failing again writes nothing new to the file.
    clock.advance(3600)
    retry_due(engine, lambda *a: publication, {"mail": mail_dest}.__getitem__, clock.now())
    assert len(read_entries(Path(os.environ["COMPLIANCE_DATA_DIR"]) / "alerts.log")) == 1


def test_fallback_destination_gets_the_alert_when_the_alert_channel_is_down(engine, http_factory, clock, monkeypatch):
    pager = http_factory()
    config_store.apply_destinations(engine, [parse_destination(
        {"name": "pager", "type": "webhook", "url": pager.url, "retry": fast_retry().model_dump(),
         **LOCAL_RECEIVER})])
    monkeypatch.setenv("COMPLIANCE_ALERT_FALLBACK", "pager")
    outcomes = notify_failure(engine, [_dead_mail("oncall-mail")], FIELDS, "ReportBuildError: boom",
                              now_fn=clock.now, sleep_fn=clock.sleep, in_run_retries=False)
    assert [o.status for o in outcomes] == ["failed"]
    assert [r.json()["report_id"] for r in pager.requests] == ["hipaa-weekly"]
    assert pager.requests[0].json()["error_summary"] == "ReportBuildError: boom"
    assert not (Path(os.environ["COMPLIANCE_DATA_DIR"]) / "alerts.log").exists()


def test_recorded_alert_is_sent_by_send_due_alerts_and_no_carrier_means_the_file(engine, http_factory, clock):
    peer = http_factory()
    dest = hook(peer.url)
    assert notify_failure(engine, [dest], FIELDS, "boom", kind="gave_up", send=False, now_fn=clock.now) == []
    assert peer.requests == []  # recorded only: a sensor tick never waits for a channel
    [row] = due_alert_rows(engine, clock.now())
    assert row["status"] == "pending" and row["artifact_sha256"] == "failure:gave_up"
    (sent,) = send_due_alerts(engine, {"oncall-hook": dest}.__getitem__, now_fn=clock.now)
    assert sent.status == "sent" and peer.requests[0].json()["kind"] == "gave_up"
    assert due_alert_rows(engine, clock.now()) == []
    msg_subject = alert_text(FIELDS, "x", "gave_up")[0]
    assert msg_subject == "Compliance report hipaa-weekly gave up after its retries for period 2026-11-23"

    notify_failure(engine, [], {**FIELDS.__dict__, "period": "2026-11-30"}, "nobody to tell", send=False,
                   now_fn=clock.now)
    [entry] = read_entries(Path(os.environ["COMPLIANCE_DATA_DIR"]) / "alerts.log")
    assert entry["period"] == "2026-11-30" and "no destination that can carry alerts" in entry["reason"]
