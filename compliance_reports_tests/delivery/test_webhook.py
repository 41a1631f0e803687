"""Webhook delivery against a real HTTP server with scripted responses."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import timedelta

import pytest
from pydantic import ValidationError

from compliance_reports.config.models import WebhookDestination
from compliance_reports.delivery import ledger
from compliance_reports.delivery.dispatcher import deliver_publication, retry_due
from compliance_reports.delivery.webhook_channel import sign, verify_signature
from compliance_reports_tests.delivery.conftest import LOCAL_RECEIVER, fast_retry, free_port, make_publication

SECRET = "test-signing-secret-7f3a"


def hook(peer_url: str, name: str = "siem", **overrides) -> WebhookDestination:
    data = {"type": "webhook", "name": name, "url": peer_url, "signing_secret_env": "CR_TEST_HOOK_SECRET",
            "retry": fast_retry(max_attempts=3).model_dump(), **LOCAL_RECEIVER}
    data.update(overrides)
    return WebhookDestination.model_validate(data)


@pytest.fixture(autouse=True)
def _secret(monkeypatch):
    monkeypatch.setenv("CR_TEST_HOOK_SECRET", SECRET)


@pytest.fixture
def deliver(engine, clock):
    def run(publication, dests, **kw):
        kw.setdefault("now_fn", clock.now)
        kw.setdefault("sleep_fn", clock.sleep)
        return deliver_publication(engine, publication, dests, **kw)

    return run


def independent_signature(secret: str, msg_id: str, ts: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), msg_id.encode() + b"." + ts.encode() + b"." + body, hashlib.sha256)
    return "v1," + base64.b64encode(mac.digest()).decode()


def test_500_500_200_is_one_delivery_with_a_stable_id(http_factory, publication, deliver, engine, clock):
    peer = http_factory(script=[500, 500, (200, {}, b'{"received":true}')])
    (outcome,) = deliver(publication, [hook(peer.url)])
    assert outcome.status == "sent" and outcome.attempts == 3
    assert len(peer.requests) == 3 and len(clock.sleeps) == 2

    ids = {r.headers["webhook-id"] for r in peer.requests}
    assert ids == {outcome.row_id}
    assert {r.headers["Idempotency-Key"] for r in peer.requests} == {outcome.row_id}
    for r in peer.requests:
        ts = r.headers["webhook-timestamp"]
        assert ts.isdigit()
        assert r.headers["webhook-signature"] == independent_signature(SECRET, outcome.row_id, ts, r.body)
        assert verify_signature(SECRET, outcome.row_id, ts, r.body, r.headers["webhook-signature"])
        assert not verify_signature("wrong", outcome.row_id, ts, r.body, r.headers["webhook-signature"])
        assert r.headers["Content-Type"] == "application/json"

    body = peer.requests[-1].json()
    assert body["id"] == outcome.row_id and body["type"] == "compliance_report.published"
    assert body["report"] == {"id": "hipaa-weekly", "name": "HIPAA weekly audit trail",
                              "type": "hipaa_audit_trail", "organization_id": "org-1", "period": "2026-11-23"}
    assert body["run_id"] == "run-0001"
    assert body["manifest"] == json.loads(publication.manifest_path.read_text())
    files = {f["filename"]: f for f in body["files"]}
    for f in publication.files:
        entry = files[f.filename]
        assert (entry["size"], entry["sha256"], entry["media_type"]) == (f.size, f.sha256, f.media_type)
        assert base64.b64decode(entry["content_base64"]) == f.path.read_bytes()

    row = ledger.get_row(engine, outcome.row_id)
    assert row["status"] == "sent" and row["attempts"] == 3
    assert row["provider_response"].startswith("HTTP 200") and "received" in row["provider_response"]
    assert "HTTP 500" in row["last_error"]


def test_large_files_are_sent_as_links(http_factory, tmp_path, deliver):
    peer = http_factory()
    pub = make_publication(tmp_path / "p", {"report.pdf": 3000, "events.csv": 100})
    pub = pub.with_links(lambda name: f"https://files.example/{name}")
    (outcome,) = deliver(pub, [hook(peer.url, inline_max_kb=1)])
    files = {f["filename"]: f for f in peer.requests[0].json()["files"]}
    assert files["report.pdf"]["url"] == "https://files.example/report.pdf" and "content_base64" not in files["report.pdf"]
    assert "content_base64" in files["events.csv"]


def test_a_large_file_without_a_url_names_no_path_on_this_host(http_factory, tmp_path, deliver):
    peer = http_factory()
    pub = make_publication(tmp_path / "p", {"report.pdf": 3000})
    (outcome,) = deliver(pub.with_links(lambda name: None), [hook(peer.url, inline_max_kb=1)])
    assert outcome.status == "sent"
    (entry,) = peer.requests[0].json()["files"]
    assert entry["url"] is None and entry["available_from"] == "operator" and "content_base64" not in entry
    assert str(tmp_path) not in peer.requests[0].body.decode()


def test_400_is_not_retried(http_factory, publication, deliver, clock):
    peer = http_factory(default=(400, {}, b'{"error":"bad schema"}'))
    (outcome,) = deliver(publication, [hook(peer.url)])
    assert outcome.status == "dead" and outcome.attempts == 1
    assert len(peer.requests) == 1 and clock.sleeps == []
    assert "HTTP 400" in outcome.error and "bad schema" in outcome.error


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_honoured(http_factory, publication, deliver, clock, status):
    peer = http_factory(script=[(status, {"Retry-After": "1"}, b"slow down"), 200])
    (outcome,) = deliver(publication, [hook(peer.url)])
    assert outcome.status == "sent" and len(peer.requests) == 2
    assert clock.sleeps == [1.0]  # the server's wait, not the 0.01 s backoff


def test_retry_after_is_honoured_in_real_time(http_factory, publication, engine):
    peer = http_factory(script=[(429, {"Retry-After": "1"}, b"")])
    (outcome,) = deliver_publication(engine, publication, [hook(peer.url)])
    assert outcome.status == "sent"
    assert peer.requests[1].at - peer.requests[0].at >= 1.0


def test_408_425_are_retryable_other_4xx_are_not(http_factory, publication, deliver):
    peer = http_factory(script=[408, 425, 200])
    (outcome,) = deliver(publication, [hook(peer.url)])
    assert outcome.status == "sent" and len(peer.requests) == 3
    peer2 = http_factory(default=404)
    (outcome2,) = deliver(publication, [hook(peer2.url, name="other")])
    assert outcome2.status == "dead" and len(peer2.requests) == 1


def test_500_forever_is_dead_only_after_the_give_up_time_and_alerted_once(http_factory, publication, deliver, engine, clock):
    peer = http_factory(default=503)
    alerts = http_factory()
    alert_dest = hook(alerts.url, name="oncall")
    dest = hook(peer.url, retry=fast_retry(max_attempts=3, give_up_after_h=2).model_dump())
    (outcome,) = deliver(publication, [dest], alert_destinations=[alert_dest])
    # the in-run budget ends: handed to the sweep, not dead, no alert
    assert outcome.status == "failed" and outcome.attempts == 3 and len(peer.requests) == 3
    assert alerts.requests == []
    row = ledger.get_row(engine, outcome.row_id)
    assert row["give_up_at"] == row["created_at"] + timedelta(hours=2)

    def sweep():
        return retry_due(engine, lambda *key: publication, {"siem": dest}.__getitem__, clock.now(),
                         load_alert_destinations=lambda report_id: [alert_dest])

    statuses = []
    while not statuses or statuses[-1] != "dead":  # the sweep keeps trying, with backoff
        clock.advance(600)
        outcomes = sweep()
        assert len(outcomes) <= 1
        if outcomes:
            statuses.append(outcomes[0].status)
            if outcomes[0].status != "dead":
                assert clock.now() < row["give_up_at"] and alerts.requests == []
    assert statuses.count("failed") >= 5 and statuses[-1] == "dead"
    final = ledger.get_row(engine, outcome.row_id)
    assert final["status"] == "dead" and final["updated_at"] >= final["give_up_at"]
    assert len(peer.requests) == final["attempts"] == 3 + len(statuses)
    assert len(alerts.requests) == 1
    alert = alerts.requests[0]
    payload = alert.json()
    assert payload["type"] == "compliance_report.failed"
    assert (payload["report_id"], payload["period"], payload["run_id"]) == ("hipaa-weekly", "2026-11-23", "run-0001")
    assert "HTTP 503" in payload["error_summary"] and "siem" in payload["error_summary"]
    assert verify_signature(SECRET, payload["id"], alert.headers["webhook-timestamp"], alert.body,
                            alert.headers["webhook-signature"])

    # a second run for the same publication: nothing resent, no second alert
    (again,) = deliver(publication, [dest], alert_destinations=[alert_dest])
    assert again.status == "dead"
    assert len(peer.requests) == final["attempts"] and len(alerts.requests) == 1
    alert_rows = [r for r in ledger.list_rows(engine) if r["recipient"].startswith("alert:")]
    assert len(alert_rows) == 1 and alert_rows[0]["status"] == "sent"
    assert alert_rows[0]["artifact_sha256"].startswith("failure:delivery:")  # one per distinct failure


def test_connection_refused_leaves_row_failed_for_the_sweep(publication, deliver, engine, clock):
    url = f"http://127.0.0.1:{free_port()}/hook"
    (outcome,) = deliver(publication, [hook(url)], in_run_retries=False)
    assert outcome.status == "failed" and outcome.attempts == 1
    assert outcome.next_attempt_at > clock.now()
    assert "ConnectionError" in outcome.error


def test_configured_headers_and_env_headers(http_factory, publication, deliver, monkeypatch):
    monkeypatch.setenv("CR_TEST_HOOK_TOKEN", "Bearer tok-123456")
    peer = http_factory()
    dest = hook(peer.url, method="PUT", headers={"X-Tenant": "org-1"},
                headers_env={"Authorization": "CR_TEST_HOOK_TOKEN"})
    # Apply refuses a protocol header; one stored before that rule is still not sent.
    with pytest.raises(ValidationError, match="webhook-id"):
        hook(peer.url, headers={"webhook-id": "forged"})
    dest = dest.model_copy(update={"headers": {"X-Tenant": "org-1", "webhook-id": "forged"}})
    (outcome,) = deliver(publication, [dest])
    (req,) = peer.requests
    assert req.method == "PUT"
    assert req.headers["X-Tenant"] == "org-1" and req.headers["Authorization"] == "Bearer tok-123456"
    assert req.headers["webhook-id"] == outcome.row_id


def test_standard_webhooks_secret_format():
    key = b"0123456789abcdef0123456789abcdef"
    secret = "whsec_" + base64.b64encode(key).decode()
    body = b'{"a":1}'
    expected = base64.b64encode(hmac.new(key, b"msg_1.1700000000." + body, hashlib.sha256).digest()).decode()
    assert sign(secret, "msg_1", 1700000000, body) == "v1," + expected


def test_query_secrets_come_from_the_environment_and_stay_out_of_the_ledger(
    http_factory, publication, deliver, engine, monkeypatch
):
    monkeypatch.setenv("CR_TEST_HOOK_QUERY_TOKEN", "qtok-5ecret-value")
    with pytest.raises(ValidationError, match="query_env"):
        hook("http://127.0.0.1:1/hook?token=qtok-5ecret-value")
    peer = http_factory(script=[(500, {}, b"upstream saw token=qtok-5ecret-value")])
    dest = hook(peer.url + "?tenant=org-1", query_env={"token": "CR_TEST_HOOK_QUERY_TOKEN"},
                retry=fast_retry(max_attempts=1).model_dump())
    (outcome,) = deliver(publication, [dest], in_run_retries=False)
    (req,) = peer.requests
    assert req.path.endswith("/hook?tenant=org-1&token=qtok-5ecret-value")
    (row,) = ledger.list_rows(engine)
    stored = json.dumps(row, default=str)
    assert "qtok-5ecret-value" not in stored and "[redacted]" in stored
    assert outcome.status in {"failed", "dead"}
