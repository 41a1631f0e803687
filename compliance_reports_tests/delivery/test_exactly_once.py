"""Exactly once: crashes, concurrent and repeated launches, and the retry sweep."""

from __future__ import annotations

import base64
import hashlib
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from compliance_reports.artifacts.publication import Publication
from compliance_reports.config.models import StorageDestination, WebhookDestination
from compliance_reports.delivery import ledger
from compliance_reports.delivery.dispatcher import deliver_publication, retry_due
from compliance_reports_tests.delivery.conftest import LOCAL_RECEIVER, fast_retry

ROOT = Path(__file__).resolve().parents[2]

CLAIM_AND_HANG = """
import sys, time
from datetime import datetime, timezone
from compliance_reports.db.engine import make_engine
from compliance_reports.delivery import ledger
engine = make_engine(sys.argv[1])
claim = ledger.claim(engine, sys.argv[2], float(sys.argv[3]), datetime.now(timezone.utc))
print("claimed" if claim else "missed", flush=True)
time.sleep(120)  # killed here: after the claim, before any send
"""


def hook(url: str, name: str = "siem") -> WebhookDestination:
    return WebhookDestination.model_validate(
        {"type": "webhook", "name": name, "url": url, "retry": fast_retry().model_dump(), **LOCAL_RECEIVER}
    )


def loader(publication: Publication, calls: list):
    def load(report_id: str, period: str, artifact_sha256: str) -> Publication:
        calls.append((report_id, period, artifact_sha256))
        return Publication.from_manifest(
            publication.manifest_path, report_id=report_id, organization_id="org-1",
            report_name=publication.report_name, report_type=publication.report_type,
            period=period, run_id=publication.run_id,
        )

    return load


def test_worker_killed_after_claim_is_delivered_once_after_lease_expiry(engine, http_factory, publication):
    peer = http_factory()
    dest = hook(peer.url)
    (row_id,) = ledger.ensure_rows(engine, publication, dest, [peer.url], dest.retry.max_attempts)
    url = engine.url.render_as_string(hide_password=False)
    proc = subprocess.Popen([sys.executable, "-c", CLAIM_AND_HANG, url, row_id, "1.5"],
                            stdout=subprocess.PIPE, cwd=ROOT)
    try:
        assert proc.stdout.readline().strip() == b"claimed"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert proc.returncode == -signal.SIGKILL
    killed_at = time.monotonic()

    # the lease still holds: nobody sends
    (outcome,) = deliver_publication(engine, publication, [dest])
    assert outcome.status == "in_progress" and peer.requests == []
    destinations = {"siem": dest}
    assert retry_due(engine, loader(publication, []), destinations.__getitem__) == []

    time.sleep(max(0.0, 1.6 - (time.monotonic() - killed_at)))
    calls: list = []
    swept = retry_due(engine, loader(publication, calls), destinations.__getitem__)
    assert [(o.row_id, o.status, o.attempts) for o in swept] == [(row_id, "sent", 2)]
    assert calls == [("hipaa-weekly", "2026-11-23", publication.manifest_sha256)]
    assert len(peer.requests) == 1 and peer.requests[0].headers["webhook-id"] == row_id
    assert ledger.get_row(engine, row_id)["possible_duplicate"] is False  # it died before sending

    (again,) = deliver_publication(engine, publication, [dest])
    assert again.status == "already_sent"
    assert retry_due(engine, loader(publication, []), destinations.__getitem__) == []
    assert len(peer.requests) == 1


def test_two_launches_at_once_and_again_send_once(engine, http_factory, publication, tmp_path):
    peer = http_factory(delay_s=0.3)
    dests = [hook(peer.url), StorageDestination.model_validate(
        {"type": "storage", "name": "share", "provider": "local", "base_path": "share"})]
    results: list = []
    barrier = threading.Barrier(2)

    def launch():
        barrier.wait()
        results.append(deliver_publication(engine, publication, dests, sleep_fn=lambda s: None))

    threads = [threading.Thread(target=launch) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 2
    statuses = sorted(o.status for run in results for o in run if o.channel == "webhook")
    assert statuses.count("sent") == 1 and set(statuses) <= {"sent", "in_progress", "already_sent"}
    assert len(peer.requests) == 1

    third = deliver_publication(engine, publication, dests)
    assert {o.status for o in third} == {"already_sent"}
    assert len(peer.requests) == 1
    assert {r["status"] for r in ledger.list_rows(engine)} == {"sent"}


def test_retry_sweep_resends_the_stored_files(engine, http_factory, publication, clock):
    peer = http_factory(script=[500])
    dest = hook(peer.url)
    (first,) = deliver_publication(engine, publication, [dest], now_fn=clock.now, in_run_retries=False)
    assert first.status == "failed" and len(peer.requests) == 1
    load_dest = {"siem": dest}.__getitem__

    assert retry_due(engine, loader(publication, []), load_dest, clock.now()) == []  # not due yet
    clock.advance(60)
    calls: list = []
    (swept,) = retry_due(engine, loader(publication, calls), load_dest, clock.now())
    assert swept.status == "sent" and swept.attempts == 2
    assert calls == [("hipaa-weekly", "2026-11-23", publication.manifest_sha256)]
    sent = {f["filename"]: f for f in peer.requests[-1].json()["files"]}
    for f in publication.files:
        assert hashlib.sha256(base64.b64decode(sent[f.filename]["content_base64"])).hexdigest() == f.sha256
        assert sent[f.filename]["sha256"] == f.sha256
    assert peer.requests[0].headers["webhook-id"] == peer.requests[1].headers["webhook-id"]
    clock.advance(3600)
    assert retry_due(engine, loader(publication, []), load_dest, clock.now()) == []
    assert len(peer.requests) == 2


def test_retry_sweep_never_sends_changed_or_orphaned_artifacts(engine, http_factory, publication, clock):
    peer = http_factory(script=[500, 500])
    a, b = hook(peer.url, "a"), hook(peer.url, "b")
    deliver_publication(engine, publication, [a, b], now_fn=clock.now, in_run_retries=False)
    assert len(peer.requests) == 2
    publication.files[0].path.write_bytes(b"changed after export")
    clock.advance(60)
    outcomes = {o.destination: o for o in retry_due(engine, loader(publication, []), {"a": a}.__getitem__, clock.now())}
    assert outcomes["a"].status == "dead"
    assert "sha256" in outcomes["a"].error
    assert outcomes["b"].status == "dead" and "cannot be loaded" in outcomes["b"].error
    assert len(peer.requests) == 2
