"""Failure alerts: plain notifications, recorded once per report and period."""

from __future__ import annotations

import email
from email import policy

from compliance_reports.config.models import EmailDestination, StorageDestination, WebhookDestination
from compliance_reports.delivery import ledger
from compliance_reports.delivery.alerts import AlertFields, notify_failure, send_failure_alert
from compliance_reports.delivery.dispatcher import retry_due
from compliance_reports_tests.delivery.conftest import LOCAL_RECEIVER, fast_retry

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
