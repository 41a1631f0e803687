"""The ledger's database failing around one row: the other rows go on, nothing is lost, and a
row whose outcome could not be recorded is left for the sweep.

The failure is real: another connection holds a write lock on the ledger table while the
dispatcher's engine has a short lock/busy timeout (SQLite: BEGIN IMMEDIATE; PostgreSQL: LOCK
TABLE ... IN EXCLUSIVE MODE with lock_timeout), so its writes fail as they would while the
server is unreachable or overloaded, and succeed again once the lock is gone.
"""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from sqlalchemy import create_engine

from compliance_reports.config.models import EmailDestination, WebhookDestination
from compliance_reports.db.engine import make_engine
from compliance_reports.delivery import ledger, ledger_db
from compliance_reports.delivery.dispatcher import deliver_publication, retry_due
from compliance_reports_tests.delivery.conftest import LOCAL_RECEIVER, fast_retry


class WriteLock:
    """Holds (or not) a write lock on the deliveries table from a separate connection."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self.url = engine.url
        self.held = threading.Event()
        self._conn = None
        self._mutex = threading.Lock()

    def acquire(self) -> None:
        with self._mutex:
            if self._conn is not None:
                return
            if self.url.get_backend_name() == "sqlite":
                conn = sqlite3.connect(self.url.database, isolation_level=None, check_same_thread=False)
                conn.execute("BEGIN IMMEDIATE")
            else:
                import psycopg2

                conn = psycopg2.connect(host=self.url.host, port=self.url.port, user=self.url.username,
                                        dbname=self.url.database)
                conn.cursor().execute("LOCK TABLE deliveries IN EXCLUSIVE MODE")
            self._conn = conn
            self.held.set()

    def release(self) -> None:
        with self._mutex:
            if self._conn is not None:
                self._conn.rollback()
                self._conn.close()
                self._conn = None
                self.held.clear()

    def fragile_engine(self):
        """An engine whose writes give up after 0.1 s behind the lock."""
        url = self.url.render_as_string(hide_password=False)
        if self.url.get_backend_name() == "sqlite":
            return create_engine(url, connect_args={"timeout": 0.1})
        return create_engine(url, connect_args={"options": "-c lock_timeout=100"})


@pytest.fixture
def outage(db, monkeypatch):
    monkeypatch.setattr(ledger_db, "RETRY_DELAYS_S", (0.05, 0.05, 0.05))
    lock = WriteLock(db)
    fragile = lock.fragile_engine()
    yield lock, fragile
    lock.release()
    fragile.dispose()


def hooks(http_factory, names):
    peers = {name: http_factory() for name in names}
    dests = [WebhookDestination.model_validate({"type": "webhook", "name": name, "url": peer.url, **LOCAL_RECEIVER,
                                                "retry": fast_retry().model_dump()})
             for name, peer in peers.items()]
    return peers, dests


def by_key(peer) -> list[str]:
    return [r.headers["Idempotency-Key"] for r in peer.requests]


def test_all_rows_are_written_before_the_first_send(engine, http_factory, smtp_server, publication):
    seen = []

    def count_rows(request):
        seen.append(len(ledger.list_rows(engine)))
        return 200

    peer = http_factory(script=[count_rows])
    dests = [
        WebhookDestination.model_validate({"type": "webhook", "name": "siem", "url": peer.url, **LOCAL_RECEIVER}),
        EmailDestination.model_validate({
            "type": "email", "name": "officers", "host": smtp_server.host, "port": smtp_server.port,
            "security": "none", "from": "reports@example.org", "to": ["a@example.org", "b@example.org"],
            "cc": ["c@example.org"]}),
    ]
    outcomes = deliver_publication(engine, publication, dests)
    assert [o.status for o in outcomes] == ["sent"] * 4
    assert seen == [4]  # when the first receiver got its copy, every row was already on record


def test_ledger_down_while_recording_one_row_never_stops_the_others(db, outage, http_factory, publication):
    lock, fragile = outage
    peers, dests = hooks(http_factory, ["hook-a", "hook-b", "hook-c"])

    def lock_then_accept(request):
        lock.acquire()  # the database becomes unavailable while hook-a's copy is accepted
        return 200

    peers["hook-a"].script = [lock_then_accept]
    lines = []

    def log(line: str) -> None:
        lines.append(line)
        if "as sent failed after" in line:
            lock.release()  # ...and comes back after the dispatcher gave up recording it

    outcomes = deliver_publication(fragile, publication, dests, lease_s=1.0, log=log)
    assert [(o.destination, o.status) for o in outcomes] == [
        ("hook-a", "unrecorded"), ("hook-b", "sent"), ("hook-c", "sent")]
    assert [len(p.requests) for p in peers.values()] == [1, 1, 1]
    row_a = ledger.get_row(db, outcomes[0].row_id)
    assert row_a["status"] == "sending" and row_a["transmit_attempt"] == 1  # visible to the sweep

    time.sleep(1.1)  # its lease runs out
    (swept,) = retry_due(db, lambda *key: publication, {d.name: d for d in dests}.__getitem__)
    assert swept.row_id == row_a["id"] and swept.status == "sent" and swept.possible_duplicate
    # at most one extra copy, with the same key, and the ledger says so
    assert by_key(peers["hook-a"]) == [row_a["id"]] * 2
    assert [len(p.requests) for p in peers.values()] == [2, 1, 1]
    assert {r["status"] for r in ledger.list_rows(db)} == {"sent"}
    assert retry_due(db, lambda *key: publication, {d.name: d for d in dests}.__getitem__) == []


def test_ledger_down_at_one_claim_leaves_that_row_for_the_sweep(db, outage, http_factory, publication):
    lock, fragile = outage
    peers, dests = hooks(http_factory, ["hook-a", "hook-b", "hook-c"])
    row_b = ledger.delivery_id(publication.report_id, publication.period, publication.fingerprint,
                               "hook-b", peers["hook-b"].url)

    def log(line: str) -> None:
        if line.startswith("delivery ") and "hook-a/webhook" in line and ": sent on attempt" in line:
            lock.acquire()  # down after hook-a was recorded...
        if f"claiming delivery {row_b} failed" in line:
            lock.release()  # ...back once hook-b's claim gave up

    outcomes = deliver_publication(fragile, publication, dests, log=log)
    assert [(o.destination, o.status) for o in outcomes] == [
        ("hook-a", "sent"), ("hook-b", "unrecorded"), ("hook-c", "sent")]
    assert [len(p.requests) for p in peers.values()] == [1, 0, 1]
    assert ledger.get_row(db, row_b)["status"] == "pending"

    swept = retry_due(db, lambda *key: publication, {d.name: d for d in dests}.__getitem__, pending_grace_s=0)
    assert [(o.row_id, o.status, o.possible_duplicate) for o in swept] == [(row_b, "sent", False)]
    assert [len(p.requests) for p in peers.values()] == [1, 1, 1]


def test_ledger_down_before_the_rows_are_written_sends_nothing(db, outage, http_factory, publication):
    lock, fragile = outage
    peers, dests = hooks(http_factory, ["hook-a", "hook-b"])
    lock.acquire()
    with pytest.raises(ledger_db.LedgerUnavailable, match="writing the ledger rows"):
        deliver_publication(fragile, publication, dests, sleep_fn=lambda s: None)
    lock.release()
    assert [len(p.requests) for p in peers.values()] == [0, 0]
    assert ledger.list_rows(db) == []
    # once it is back, the publish (retried) delivers everything once
    outcomes = deliver_publication(make_engine(db.url.render_as_string(hide_password=False)), publication, dests)
    assert [o.status for o in outcomes] == ["sent", "sent"]
    assert [len(p.requests) for p in peers.values()] == [1, 1]
