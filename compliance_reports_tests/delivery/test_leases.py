"""Leases that fit the work: derived from the channel's worst case, renewed during a send, and
claimed by exactly one worker however many sweeps run."""

from __future__ import annotations

import threading
import time
from collections import Counter
from datetime import timedelta

import pytest

from compliance_reports.config.models import EmailDestination, StorageDestination, WebhookDestination
from compliance_reports.delivery import ledger
from compliance_reports.delivery.dispatcher import deliver_publication, retry_due
from compliance_reports.delivery.lease import lease_for, send_budget_s
from compliance_reports_tests.delivery.conftest import LOCAL_RECEIVER, fast_retry


def test_lease_covers_the_worst_case_send(publication):
    hook = WebhookDestination.model_validate({"type": "webhook", "name": "h", "url": "https://x.test/h",
                                              "timeout_s": 300})
    mail = EmailDestination.model_validate({"type": "email", "name": "m", "host": "smtp.x.test",
                                            "from": "a@x.test", "to": ["b@x.test"]})
    s3 = StorageDestination.model_validate({"type": "storage", "name": "s", "provider": "s3", "bucket": "bkt"})
    assert send_budget_s(hook) == 600 and lease_for(hook) == 750  # connect + read at the 300 s maximum
    assert send_budget_s(mail) == 600 and lease_for(mail) > 600  # ten SMTP steps of 60 s
    # three files and the manifest, up to three tries of connect + read each
    assert send_budget_s(s3, publication) == 4 * 3 * 120
    assert all(lease_for(d, publication) > 300 for d in (hook, mail, s3))  # the old fixed lease


def test_lease_is_renewed_during_a_send_slower_than_the_lease(db, http_factory, publication):
    def slow(request):
        time.sleep(4.0)
        return 200

    peer = http_factory(script=[slow])
    dest = WebhookDestination.model_validate({"type": "webhook", "name": "siem", "url": peer.url, **LOCAL_RECEIVER,
                                              "timeout_s": 10, "retry": fast_retry().model_dump()})
    results = []
    sender = threading.Thread(target=lambda: results.append(
        deliver_publication(db, publication, [dest], lease_s=1.5)))
    sender.start()
    leases, stolen = [], []
    while sender.is_alive():
        time.sleep(0.15)
        rows = ledger.list_rows(db)
        if not rows:
            continue
        row = rows[0]
        if row["status"] == "sending":
            leases.append(row["lease_expires_at"])
        # other workers on the same database: a sweep and a direct claim, both with the database's clock
        swept = retry_due(db, lambda *key: publication, {"siem": dest}.__getitem__, pending_grace_s=0)
        stolen += [o for o in swept if o.status != "in_progress"]
        claim = ledger.claim(db, row["id"], 1.5)
        if claim is not None:
            stolen.append(claim)
    sender.join()
    assert stolen == []
    (outcome,) = results[0]
    assert outcome.status == "sent" and outcome.attempts == 1
    assert len(peer.requests) == 1
    # the lease moved forward while the 4 s send went on, far past the first 1.5 s lease
    assert len(set(leases)) >= 3 and max(leases) - min(leases) >= timedelta(seconds=2)


@pytest.mark.parametrize("sweeps", [2, 3])
def test_concurrent_sweeps_never_send_twice(db, smtp_server, publication, clock, sweeps):
    recipients = [f"user{i}@example.org" for i in range(8)]
    dest = EmailDestination.model_validate({
        "type": "email", "name": "officers", "host": smtp_server.host, "port": smtp_server.port,
        "security": "none", "from": "reports@example.org", "to": recipients,
        "retry": fast_retry().model_dump()})
    row_ids = ledger.ensure_rows(db, publication, dest, recipients, now=clock.now())
    for row_id in row_ids[:4]:  # half of them failed once already, the rest never started
        ledger.claim(db, row_id, 30, clock.now())
        ledger.mark_failed(db, row_id, "SMTP 421", clock.now(), dest.retry, True, 0)
    clock.advance(120)
    barrier = threading.Barrier(sweeps)
    outcomes, errors = [], []

    def sweep():
        try:
            barrier.wait()
            outcomes.extend(retry_due(db, lambda *key: publication, {"officers": dest}.__getitem__,
                                      clock.now()))
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=sweep) for _ in range(sweeps)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert Counter(m["rcpt_tos"][0] for m in smtp_server.messages) == {r: 1 for r in recipients}
    assert Counter(o.status for o in outcomes)["sent"] == len(recipients)
    assert {o.status for o in outcomes} <= {"sent", "in_progress", "already_sent"}
    rows = ledger.list_rows(db)
    assert {r["status"] for r in rows} == {"sent"} and not any(r["possible_duplicate"] for r in rows)
