"""Re-runs are re-issues, not duplicates: what each receiver got when a period is published again."""

from __future__ import annotations

import email
import json
from collections import Counter
from email import policy

from compliance_reports.config.models import EmailDestination, StorageDestination, WebhookDestination
from compliance_reports.delivery import ledger
from compliance_reports.delivery.dispatcher import deliver_publication, redeliver
from compliance_reports_tests.delivery.conftest import LOCAL_RECEIVER, fast_retry


def _mail(peer) -> EmailDestination:
    return EmailDestination.model_validate({
        "type": "email", "name": "officers", "host": peer.host, "port": peer.port, "security": "none",
        "from": "reports@example.org", "to": ["alice@example.org"], "cc": ["bob@example.org"],
        "retry": fast_retry().model_dump(),
    })


def _hook(url) -> WebhookDestination:
    return WebhookDestination.model_validate(
        {"type": "webhook", "name": "siem", "url": url, **LOCAL_RECEIVER, "retry": fast_retry().model_dump()})


def _per_recipient(smtp) -> Counter:
    return Counter(m["rcpt_tos"][0] for m in smtp.messages)


def test_rerun_with_unchanged_content_sends_nothing_new(engine, stored_runs, smtp_server, http_factory, clock, storage_root):
    peer = http_factory()
    archive = StorageDestination.model_validate(
        {"type": "storage", "name": "archive", "provider": "local", "base_path": "archive"})
    dests = [_mail(smtp_server), _hook(peer.url), archive]
    first = stored_runs.publish("run-1")
    assert all(o.status == "sent" for o in deliver_publication(engine, first, dests, now_fn=clock.now,
                                                               sleep_fn=clock.sleep))
    # the same period materialized again (run-now twice, a backfill): same content, new run
    second = stored_runs.publish("run-2")
    assert second.manifest_sha256 != first.manifest_sha256  # the files differ (run id, generated_at)
    assert second.fingerprint == first.fingerprint and second.reissue_of is None
    outcomes = deliver_publication(engine, second, dests, now_fn=clock.now, sleep_fn=clock.sleep)
    assert {o.status for o in outcomes} == {"already_sent"}

    assert _per_recipient(smtp_server) == {"alice@example.org": 1, "bob@example.org": 1}
    assert len(peer.requests) == 1
    stored = sorted(p.relative_to(storage_root / "archive").as_posix() for p in (storage_root / "archive").rglob("*.json"))
    assert all(path.split("/")[3] == "run-1" for path in stored)  # the default key holds the run id
    rows = ledger.list_rows(engine)
    assert len(rows) == 4 and {r["status"] for r in rows} == {"sent"}
    assert {r["run_id"] for r in rows} == {"run-1"} and {r["purpose"] for r in rows} == {"delivery"}


def test_changed_content_is_one_reissue_per_recipient(engine, stored_runs, smtp_server, http_factory, clock, storage_root):
    peer = http_factory()
    archive = StorageDestination.model_validate(
        {"type": "storage", "name": "archive", "provider": "local", "base_path": "archive"})
    dests = [_mail(smtp_server), _hook(peer.url), archive]
    first = stored_runs.publish("run-1")
    deliver_publication(engine, first, dests, now_fn=clock.now, sleep_fn=clock.sleep)
    clock.advance(3600)

    # late audit rows changed the content: the next run is a re-issue
    changed = stored_runs.publish("run-3", failed_logins=312)
    assert changed.fingerprint != first.fingerprint
    assert changed.reissue_of == {"run_id": "run-1", "manifest_sha256": first.manifest_sha256,
                                  "content_fingerprint": first.fingerprint}
    exported = json.loads(next(f.path for f in changed.files if f.filename.endswith(".json")).read_bytes())
    assert exported["reissue_of"]["run_id"] == "run-1" and exported["sections"][0]["id"] == "reissue"
    outcomes = deliver_publication(engine, changed, dests, now_fn=clock.now, sleep_fn=clock.sleep)
    assert [o.status for o in outcomes] == ["sent"] * 4

    assert _per_recipient(smtp_server) == {"alice@example.org": 2, "bob@example.org": 2}
    for recipient, msg in [(m["rcpt_tos"][0], email.message_from_bytes(m["data"], policy=policy.default))
                           for m in smtp_server.messages[2:]]:
        assert msg["Subject"].startswith("Re-issued: [1 critical] HIPAA monthly - November 2026")
        text = msg.get_body(("plain",)).get_content()
        assert "re-issue" in text and "run-1" in text and first.manifest_sha256 in text
    assert not any(email.message_from_bytes(m["data"])["Subject"].startswith("Re-issued")
                   for m in smtp_server.messages[:2])
    assert len(peer.requests) == 2
    envelope = peer.requests[1].json()
    assert envelope["type"] == "compliance_report.reissued" and envelope["issue"] == "re-issued"
    assert envelope["reissue_of"]["run_id"] == "run-1"
    assert envelope["reissue_of"]["manifest_sha256"] == first.manifest_sha256
    assert peer.requests[0].json()["type"] == "compliance_report.published"
    assert peer.requests[0].json()["issue"] == "original" and peer.requests[0].json()["reissue_of"] is None
    assert peer.requests[0].headers["webhook-id"] != peer.requests[1].headers["webhook-id"]
    # both evidence sets are kept, each under its own run
    assert {p.parent.name for p in (storage_root / "archive").rglob("manifest.json")} == {"run-1", "run-3"}

    reissues = [r for r in ledger.list_rows(engine) if r["purpose"] == "reissue"]
    assert len(reissues) == 4
    assert {(r["supersedes_run_id"], r["supersedes_sha256"]) for r in reissues} == {("run-1", first.manifest_sha256)}
    # publishing the re-issue again, or the same content from yet another run: nothing new
    again = stored_runs.publish("run-4", failed_logins=312)
    assert again.reissue_of is None
    assert {o.status for o in deliver_publication(engine, again, dests, now_fn=clock.now)} == {"already_sent"}
    assert len(smtp_server.messages) == 4 and len(peer.requests) == 2
    # content changed back: the recipients get it again, as a re-issue of run-3
    back = stored_runs.publish("run-5")
    assert back.reissue_of["run_id"] == "run-3"
    deliver_publication(engine, back, dests[:1], now_fn=clock.now, sleep_fn=clock.sleep)
    assert _per_recipient(smtp_server) == {"alice@example.org": 3, "bob@example.org": 3}
    newest = ledger.latest_issue(engine, "hipaa-monthly", "2026-11-01")
    assert newest["content_fingerprint"] == first.fingerprint and newest["sequence"] == 1


def test_redeliver_sends_a_new_copy_on_purpose(engine, stored_runs, smtp_server, http_factory, clock):
    peer = http_factory()
    dests = [_mail(smtp_server), _hook(peer.url)]
    first = stored_runs.publish("run-1")
    deliver_publication(engine, first, dests, now_fn=clock.now, sleep_fn=clock.sleep)
    clock.advance(60)

    def load(report_id, period, sha):
        assert (report_id, period, sha) == ("hipaa-monthly", "2026-11-01", first.manifest_sha256)
        return first

    outcomes = redeliver(engine, "hipaa-monthly", "2026-11-01", dests[1:], load, now_fn=clock.now,
                         sleep_fn=clock.sleep)
    assert [o.status for o in outcomes] == ["sent"]
    assert len(peer.requests) == 2 and len(smtp_server.messages) == 2  # only the webhook, once more
    ids = [r.headers["Idempotency-Key"] for r in peer.requests]
    assert ids[0] != ids[1]  # a deliberate copy: receivers must not drop it
    assert peer.requests[1].json()["manifest_sha256"] == first.manifest_sha256
    rows = ledger.list_rows(engine, report_id="hipaa-monthly")
    redelivered = [r for r in rows if r["purpose"] == "redelivery"]
    assert [(r["sequence"], r["status"], r["destination"]) for r in redelivered] == [(1, "sent", "siem")]
    # a second redelivery is one more copy; an ordinary re-run is still nothing new
    redeliver(engine, "hipaa-monthly", "2026-11-01", dests, load, now_fn=clock.now, sleep_fn=clock.sleep)
    assert len(peer.requests) == 3 and _per_recipient(smtp_server) == {"alice@example.org": 2, "bob@example.org": 2}
    assert {o.status for o in deliver_publication(engine, first, dests, now_fn=clock.now)} == {"already_sent"}
    assert len(peer.requests) == 3


def test_a_changed_stored_report_document_is_never_sent_and_not_retried(engine, stored_runs, http_factory, clock,
                                                                          tmp_path):
    """The mail's figures come from the stored report document: if it no longer matches the
    manifest, the sweep gives the row up at once instead of retrying until the give-up time."""
    from compliance_reports.config import store as config_store
    from compliance_reports.delivery.dispatcher import retry_due
    from compliance_reports.exporters.publishing import stored_publication_loader

    config_store.apply_reports(engine, [stored_runs.report])
    peer = http_factory(script=[500])
    dest = _hook(peer.url)
    publication = stored_runs.publish("run-1")
    (first,) = deliver_publication(engine, publication, [dest], now_fn=clock.now, sleep_fn=clock.sleep,
                                   in_run_retries=False)
    assert first.status == "failed"
    stored = stored_runs.store.local_file(stored_runs.store.location_for(
        ("acme-health", "hipaa-monthly", "2026-11-01", "run-1", "report.json")))
    stored.write_bytes(stored.read_bytes().replace(b"HIPAA", b"HIPAx"))
    clock.sleep(3600)
    (swept,) = retry_due(engine, stored_publication_loader(engine, stored_runs.store, tmp_path / "sweep"),
                         {"siem": dest}.__getitem__, now_fn=clock.now, sleep_fn=clock.sleep)
    assert swept.status == "dead" and "report document changed" in swept.error and "not retried" in swept.error
    assert len(peer.requests) == 1  # only the attempt before the change
