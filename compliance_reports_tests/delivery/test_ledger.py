"""The ledger state machine on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from compliance_reports.config.models import WebhookDestination
from compliance_reports.delivery import ledger
from compliance_reports_tests.delivery.conftest import FakeClock, fast_retry

DEST = WebhookDestination(type="webhook", name="hook", url="https://example.test/hook")


def _rows(db, publication, recipients=("https://example.test/hook",), max_attempts=3, now=None):
    return ledger.ensure_rows(db, publication, DEST, list(recipients), max_attempts, now=now)


def test_id_is_sha256_of_the_key_joined_with_nul():
    key = "\0".join(["r", "2026-11-23", "abc", "hook", "a@b.c"])
    assert ledger.delivery_id("r", "2026-11-23", "abc", "hook", "a@b.c") == hashlib.sha256(key.encode()).hexdigest()[:32]
    assert ledger.delivery_id("r", "2026-11-23", "abc", "hook", "x@b.c") != ledger.delivery_id(
        "r", "2026-11-23", "abc", "hook", "a@b.c"
    )


def test_ensure_rows_is_idempotent(db, publication, clock):
    first = _rows(db, publication, ["a@x.io", "b@x.io"], now=clock.now())
    again = _rows(db, publication, ["a@x.io", "b@x.io"], now=clock.now())
    assert first == again and len(set(first)) == 2
    with db.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM deliveries")).scalar() == 2
    row = ledger.get_row(db, first[0])
    assert row["status"] == "pending" and row["attempts"] == 0 and row["max_attempts"] == 3
    assert row["artifact_sha256"] == publication.manifest_sha256
    assert row["channel"] == "webhook" and row["run_id"] == "run-0001"


def test_lifecycle(db, publication, clock: FakeClock):
    retry = fast_retry(max_attempts=3, initial_delay_s=10, multiplier=2, max_delay_s=100)
    (row_id,) = _rows(db, publication, now=clock.now())

    c1 = ledger.claim(db, row_id, 30, clock.now())
    assert c1 is not None and c1.attempt == 1 and c1.id == row_id
    assert ledger.claim(db, row_id, 30, clock.now()) is None  # leased

    rec = ledger.record_failure(db, row_id, "HTTP 503", clock.now(), retry, True, None,
                                attempt=1, rand=lambda: 1.0)
    assert (rec.status, rec.delay_s) == ("failed", 10.0)
    assert rec.next_attempt_at == clock.now() + timedelta(seconds=10)
    assert ledger.claim(db, row_id, 30, clock.now() + timedelta(seconds=9)) is None  # not yet due
    assert ledger.due_rows(db, clock.now() + timedelta(seconds=9)) == []
    assert [r["id"] for r in ledger.due_rows(db, clock.now() + timedelta(seconds=10))] == [row_id]

    clock.advance(10)
    c2 = ledger.claim(db, row_id, 30, clock.now())
    assert c2.attempt == 2
    # Retry-After wins over the backoff
    rec = ledger.record_failure(db, row_id, "HTTP 429", clock.now(), retry, True, 42.0, attempt=2)
    assert rec.status == "failed" and rec.delay_s == 42.0
    clock.advance(42)
    c3 = ledger.claim(db, row_id, 30, clock.now())
    assert c3.attempt == 3
    assert ledger.mark_failed(db, row_id, "HTTP 503", clock.now(), retry, True, None) == "dead"
    row = ledger.get_row(db, row_id)
    assert row["status"] == "dead" and row["attempts"] == 3 and row["next_attempt_at"] is None
    clock.advance(10_000)
    assert ledger.claim(db, row_id, 30, clock.now()) is None
    assert ledger.due_rows(db, clock.now()) == []

    # an operator reschedules: one more attempt, attempts kept
    info = ledger.reschedule(db, row_id, clock.now())
    assert info["previous_status"] == "dead" and info["status"] == "failed" and info["attempts"] == 3
    c4 = ledger.claim(db, row_id, 30, clock.now())
    assert c4.attempt == 4
    assert ledger.mark_sent(db, row_id, "HTTP 200 OK", clock.now())
    assert not ledger.mark_sent(db, row_id, "again", clock.now())
    row = ledger.get_row(db, row_id)
    assert row["status"] == "sent" and row["provider_response"] == "HTTP 200 OK" and row["sent_at"] == clock.now()
    with pytest.raises(ledger.RescheduleError):
        ledger.reschedule(db, row_id, clock.now())
    assert ledger.claim(db, row_id, 30, clock.now() + timedelta(days=365)) is None


def test_not_retryable_is_dead_at_once(db, publication, clock):
    (row_id,) = _rows(db, publication, now=clock.now())
    ledger.claim(db, row_id, 30, clock.now())
    assert ledger.mark_failed(db, row_id, "HTTP 400", clock.now(), fast_retry(), False, None) == "dead"
    assert ledger.get_row(db, row_id)["attempts"] == 1


def test_expired_lease_is_reclaimed_and_stale_worker_is_fenced(db, publication, clock):
    (row_id,) = _rows(db, publication, max_attempts=3, now=clock.now())
    stale = ledger.claim(db, row_id, 5, clock.now())
    assert ledger.due_rows(db, clock.now()) == []
    clock.advance(5)
    assert [r["id"] for r in ledger.due_rows(db, clock.now())] == [row_id]
    fresh = ledger.claim(db, row_id, 5, clock.now())
    assert fresh.attempt == stale.attempt + 1
    # the stale worker's failure does not overwrite the new claim
    rec = ledger.record_failure(db, row_id, "late", clock.now(), fast_retry(), True, None, attempt=stale.attempt)
    assert not rec.applied and ledger.get_row(db, row_id)["status"] == "sending"


def test_expired_lease_on_last_attempt_goes_dead(db, publication, clock):
    (row_id,) = _rows(db, publication, max_attempts=1, now=clock.now())
    assert ledger.claim(db, row_id, 5, clock.now()).attempt == 1
    clock.advance(6)
    assert ledger.claim(db, row_id, 5, clock.now()) is None
    row = ledger.get_row(db, row_id)
    assert row["status"] == "dead" and "lease expired" in row["last_error"]


def test_due_rows_skip_young_pending_rows(db, publication, clock):
    (row_id,) = _rows(db, publication, now=clock.now())
    assert ledger.due_rows(db, clock.now(), pending_grace_s=60) == []
    assert [r["id"] for r in ledger.due_rows(db, clock.now() + timedelta(seconds=61), pending_grace_s=60)] == [row_id]
    assert [r["id"] for r in ledger.list_rows(db, status="pending", report_id="hipaa-weekly")] == [row_id]
    assert ledger.list_rows(db, status="sent") == []


def test_concurrent_claims_have_one_winner(db, publication, clock):
    recipients = [f"user{i}@x.io" for i in range(12)]
    row_ids = _rows(db, publication, recipients, now=clock.now())
    wins: dict[str, list[str]] = {r: [] for r in row_ids}
    errors = []

    def worker(name: str, barrier: threading.Barrier) -> None:
        try:
            for row_id in row_ids:
                barrier.wait()
                if ledger.claim(db, row_id, 60, clock.now()) is not None:
                    wins[row_id].append(name)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    barrier = threading.Barrier(2)
    threads = [threading.Thread(target=worker, args=(n, barrier)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors
    assert all(len(w) == 1 for w in wins.values()), wins
    assert all(ledger.get_row(db, r)["attempts"] == 1 for r in row_ids)
