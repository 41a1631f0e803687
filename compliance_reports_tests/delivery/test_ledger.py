"""The ledger state machine on SQLite and PostgreSQL."""

from __future__ import annotations

import hashlib
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
    # attempts alone never kill a row: it stays failed until its give-up time
    assert ledger.mark_failed(db, row_id, "HTTP 503", clock.now(), retry, True, None) == "failed"
    give_up_at = ledger.get_row(db, row_id)["give_up_at"]
    assert give_up_at == ledger.get_row(db, row_id)["created_at"] + timedelta(hours=24)
    clock.t = give_up_at
    c4 = ledger.claim(db, row_id, 30, clock.now())
    assert c4.attempt == 4
    rec = ledger.record_failure(db, row_id, "HTTP 503", clock.now(), retry, True, None, attempt=4)
    assert rec.status == "dead" and rec.next_attempt_at is None
    row = ledger.get_row(db, row_id)
    assert row["status"] == "dead" and row["attempts"] == 4 and row["next_attempt_at"] is None
    assert row["possible_duplicate"] is False
    clock.advance(10_000)
    assert ledger.claim(db, row_id, 30, clock.now()) is None
    assert ledger.due_rows(db, clock.now()) == []

    # an operator reschedules: one more attempt, attempts kept
    info = ledger.reschedule(db, row_id, clock.now())
    assert info["previous_status"] == "dead" and info["status"] == "failed" and info["attempts"] == 4
    c5 = ledger.claim(db, row_id, 30, clock.now())
    assert c5.attempt == 5
    assert ledger.mark_sent(db, row_id, "HTTP 200 OK", clock.now())
    assert not ledger.mark_sent(db, row_id, "again", clock.now())
    row = ledger.get_row(db, row_id)
    assert row["status"] == "sent" and row["provider_response"] == "HTTP 200 OK" and row["sent_at"] == clock.now()
    with pytest.raises(ledger.RescheduleError):
        ledger.reschedule(db, row_id, clock.now())
    assert ledger.claim(db, row_id, 30, clock.now() + timedelta(days=365)) is None


def test_the_last_attempt_before_give_up_is_at_the_give_up_time(db, publication, clock):
    retry = fast_retry(initial_delay_s=600, max_delay_s=3600, give_up_after_h=1)
    (row_id,) = _rows(db, publication, now=clock.now())  # DEST gives up after 24 h
    clock.advance(24 * 3600 - 60)
    ledger.claim(db, row_id, 30, clock.now())
    rec = ledger.record_failure(db, row_id, "HTTP 503", clock.now(), retry, True, None, attempt=1, rand=lambda: 1.0)
    give_up_at = ledger.get_row(db, row_id)["give_up_at"]
    assert rec.status == "failed" and rec.next_attempt_at == give_up_at and rec.delay_s == 60
    clock.t = give_up_at
    ledger.claim(db, row_id, 30, clock.now())
    assert ledger.mark_failed(db, row_id, "HTTP 503", clock.now(), retry, True, None) == "dead"


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


def test_expired_lease_after_give_up_is_dead_only_when_nothing_was_sent(db, publication, clock):
    a, b = _rows(db, publication, ["a@x.io", "b@x.io"], now=clock.now())
    give_up_at = ledger.get_row(db, a)["give_up_at"]
    clock.t = give_up_at - timedelta(seconds=1)
    claim_a = ledger.claim(db, a, 5, clock.now())
    claim_b = ledger.claim(db, b, 5, clock.now())
    assert ledger.mark_transmitting(db, b, claim_b.attempt, clock.now())  # b's worker began sending
    clock.advance(6)  # both workers died; their leases ran out after the give-up time
    assert ledger.claim(db, a, 5, clock.now()) is None and ledger.claim(db, b, 5, clock.now()) is None
    row_a, row_b = ledger.get_row(db, a), ledger.get_row(db, b)
    assert (row_a["status"], row_a["possible_duplicate"]) == ("dead", False)
    assert "before sending" in row_a["last_error"] and claim_a.attempt == 1
    # b may have reached its receiver: never "dead", not retried automatically
    assert (row_b["status"], row_b["possible_duplicate"], row_b["next_attempt_at"]) == ("unknown", True, None)
    assert "may have been delivered" in row_b["last_error"]
    assert ledger.due_rows(db, clock.now() + timedelta(days=1)) == []
    # an operator retries it: same id (so same Idempotency-Key / Message-ID), still flagged
    assert ledger.reschedule(db, b, clock.now())["status"] == "unknown"
    again = ledger.claim(db, b, 5, clock.now())
    assert again.id == b and again.attempt == 2
    ledger.mark_sent(db, b, "HTTP 200", clock.now())
    assert ledger.get_row(db, b)["possible_duplicate"] is True


def test_crash_after_transmitting_is_retried_as_a_possible_duplicate(db, publication, clock):
    (row_id,) = _rows(db, publication, now=clock.now())
    first = ledger.claim(db, row_id, 5, clock.now())
    assert ledger.mark_transmitting(db, row_id, first.attempt, clock.now())
    assert ledger.renew_lease(db, row_id, first.attempt, 5, clock.now() + timedelta(seconds=4))
    clock.advance(8)  # renewed until +9 s
    assert ledger.claim(db, row_id, 5, clock.now()) is None
    clock.advance(2)
    second = ledger.claim(db, row_id, 5, clock.now())
    assert second.attempt == 2
    row = ledger.get_row(db, row_id)
    assert row["possible_duplicate"] is True and "after sending" in row["last_error"]
    # the first worker wakes up: its lease is gone, it may neither renew nor begin sending
    assert not ledger.renew_lease(db, row_id, first.attempt, 5, clock.now())
    assert not ledger.mark_transmitting(db, row_id, first.attempt, clock.now())


def test_unknown_outcome_is_retried_until_give_up_then_stays_unknown(db, publication, clock):
    retry = fast_retry(initial_delay_s=10, max_delay_s=10)
    (row_id,) = _rows(db, publication, now=clock.now())
    ledger.claim(db, row_id, 30, clock.now())
    rec = ledger.record_failure(db, row_id, "read timeout", clock.now(), retry, True, None, attempt=1,
                                outcome_unknown=True)
    assert rec.status == "unknown" and rec.next_attempt_at is not None
    assert ledger.get_row(db, row_id)["possible_duplicate"] is True
    clock.advance(10)
    assert [r["id"] for r in ledger.due_rows(db, clock.now())] == [row_id]
    ledger.claim(db, row_id, 30, clock.now())
    # a later, known failure keeps the flag; past give-up the row is unknown, not dead
    rec = ledger.record_failure(db, row_id, "HTTP 400", clock.now(), retry, False, None, attempt=2)
    row = ledger.get_row(db, row_id)
    assert rec.status == "unknown" and row["next_attempt_at"] is None and row["possible_duplicate"] is True


def test_database_clock_decides_due_and_lease_times(db, publication, monkeypatch):
    """Without an explicit `now`, times come from the database, not from this process's clock."""
    from datetime import datetime, timezone

    import compliance_reports.delivery.attempt as attempt
    from compliance_reports.delivery.dispatcher import retry_due
    from compliance_reports.delivery.ledger_db import database_time

    before = database_time(db)
    (row_id,) = _rows(db, publication)
    claimed = ledger.claim(db, row_id, 600)
    after = database_time(db)
    assert before + timedelta(seconds=600) <= claimed.lease_expires_at <= after + timedelta(seconds=600)
    row = ledger.get_row(db, row_id)
    assert before <= row["created_at"] <= after and row["give_up_at"] == row["created_at"] + timedelta(hours=24)
    assert abs((database_time(db) - datetime.now(timezone.utc)).total_seconds()) < 5

    # a sweep on a host whose clock runs an hour fast still sees the lease held
    monkeypatch.setattr(attempt, "utcnow", lambda: datetime.now(timezone.utc) + timedelta(hours=1))

    def never(*args):
        raise AssertionError("nothing is due")

    assert retry_due(db, never, never) == []
    assert ledger.claim(db, row_id, 600) is None
    assert ledger.get_row(db, row_id)["attempts"] == 1


def test_a_second_unknown_outcome_stops_automatic_retries(db, publication, clock):
    """At most one extra copy: after two attempts that may both have delivered, a person decides."""
    retry = fast_retry(initial_delay_s=10, max_delay_s=10)
    reported, crashed = _rows(db, publication, ["a@x.io", "b@x.io"], now=clock.now())
    ledger.claim(db, reported, 30, clock.now())
    ledger.record_failure(db, reported, "read timeout", clock.now(), retry, True, None, attempt=1, outcome_unknown=True)
    clock.advance(10)
    ledger.claim(db, reported, 30, clock.now())
    rec = ledger.record_failure(db, reported, "read timeout", clock.now(), retry, True, None, attempt=2,
                                outcome_unknown=True)
    assert rec.status == "unknown" and rec.next_attempt_at is None

    first = ledger.claim(db, crashed, 5, clock.now())
    ledger.mark_transmitting(db, crashed, first.attempt, clock.now())
    clock.advance(6)
    second = ledger.claim(db, crashed, 5, clock.now())  # one resend with the same id...
    assert second.id == crashed and ledger.get_row(db, crashed)["possible_duplicate"] is True
    ledger.mark_transmitting(db, crashed, second.attempt, clock.now())
    clock.advance(6)
    assert ledger.claim(db, crashed, 5, clock.now()) is None  # ...but not a third copy
    row = ledger.get_row(db, crashed)
    assert (row["status"], row["next_attempt_at"]) == ("unknown", None) and "at most one extra copy" in row["last_error"]
    assert ledger.due_rows(db, clock.now() + timedelta(days=2)) == []
