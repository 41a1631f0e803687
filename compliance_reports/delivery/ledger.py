"""The delivery ledger: every delivery on record, each sent exactly once (DESIGN section 6).

One row per (report_id, period, artifact_sha256, destination, recipient). The row id is
derived from that key (`delivery_id`), so it is the same on every attempt and in every process;
webhooks send it as webhook-id and Idempotency-Key, email as the Message-ID.

State machine (every transition is one conditional UPDATE in one transaction; the WHERE clause
is the guard and rowcount tells whether this process won):

    pending --claim--> sending                        (attempts += 1, lease set)
    failed  --claim, next_attempt_at <= now--> sending
    sending --claim, lease expired, attempts < max--> sending   (crash recovery)
    sending --claim, lease expired, attempts >= max--> dead     (outcome unknown, loud)
    sending --mark_sent--> sent                       (terminal: never sent again)
    sending --mark_failed, retryable, attempts < max--> failed (next_attempt_at = backoff)
    sending --mark_failed, not retryable or attempts >= max--> dead
    failed|dead --reschedule (CLI `deliveries retry`)--> failed, next_attempt_at = now

`claim` returns None when the row is sent, dead, not yet due, or leased by someone else.
A late `mark_sent` from a worker whose lease had expired still records `sent` (the provider
accepted it: the record must say so). The window between the provider accepting and
`mark_sent` committing is the only place a crash can cause a second send; the stable
idempotency key and Message-ID let receivers drop that duplicate.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from sqlalchemy import Engine, and_, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from compliance_reports.db.schema import deliveries
from compliance_reports.delivery.backoff import policy_delay
from compliance_reports.delivery.errors import MAX_ERROR_CHARS

STATUSES = ("pending", "sending", "sent", "failed", "dead")
CLAIMABLE = ("pending", "failed")
_MAX_TEXT = MAX_ERROR_CHARS

d = deliveries.c


def delivery_id(report_id: str, period: str, artifact_sha256: str, destination: str, recipient: str) -> str:
    """sha256 hex (first 32 characters) of the five key fields joined with NUL."""
    key = "\0".join([report_id, period, artifact_sha256, destination, recipient])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class Claim:
    """A row this process now holds (status sending) until `lease_expires_at`."""

    id: str
    report_id: str
    organization_id: str
    period: str
    artifact_sha256: str
    destination: str
    channel: str
    recipient: str
    attempt: int  # the attempt number this claim makes (1 for the first)
    max_attempts: int
    lease_expires_at: datetime
    artifact_location: str | None
    run_id: str | None


@dataclass(frozen=True)
class FailureRecord:
    status: str  # failed | dead (or the row's status when this call changed nothing)
    next_attempt_at: datetime | None
    delay_s: float | None
    applied: bool


def _clip(text: str | None) -> str | None:
    if text is not None and len(text) > _MAX_TEXT:
        return text[: _MAX_TEXT - 3] + "..."
    return text


def _insert_if_absent(conn, values: dict[str, Any]) -> None:
    dialect = conn.dialect.name
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        conn.execute(pg_insert(deliveries).values(**values).on_conflict_do_nothing())
    elif dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        conn.execute(sqlite_insert(deliveries).values(**values).on_conflict_do_nothing())
    else:  # portable fallback: a savepoint absorbs the duplicate
        try:
            with conn.begin_nested():
                conn.execute(insert(deliveries).values(**values))
        except IntegrityError:
            pass


def ensure_row(
    engine: Engine,
    *,
    report_id: str,
    organization_id: str,
    period: str,
    artifact_sha256: str,
    destination: str,
    channel: str,
    recipient: str,
    max_attempts: int,
    artifact_location: str | None,
    run_id: str | None,
    now: datetime,
) -> str:
    """Insert the row for this key unless it exists; returns its id either way."""
    row_id = delivery_id(report_id, period, artifact_sha256, destination, recipient)
    with engine.begin() as conn:
        _insert_if_absent(
            conn,
            dict(
                id=row_id, report_id=report_id, organization_id=organization_id, period=period,
                artifact_sha256=artifact_sha256, destination=destination, channel=channel,
                recipient=recipient, status="pending", attempts=0, max_attempts=max_attempts,
                artifact_location=artifact_location, run_id=run_id, created_at=now,
                updated_at=now,
            ),
        )
    return row_id


def ensure_rows(
    engine: Engine,
    publication,
    destination,
    recipients: list[str],
    max_attempts: int,
    *,
    now: datetime | None = None,
) -> list[str]:
    """One row per recipient of `destination` for this publication (insert if absent)."""
    now = now or datetime.now(timezone.utc)
    rows = []
    with engine.begin() as conn:
        for recipient in recipients:
            row_id = delivery_id(
                publication.report_id, publication.period, publication.artifact_sha256,
                destination.name, recipient,
            )
            _insert_if_absent(
                conn,
                dict(
                    id=row_id, report_id=publication.report_id,
                    organization_id=publication.organization_id, period=publication.period,
                    artifact_sha256=publication.artifact_sha256, destination=destination.name,
                    channel=destination.type, recipient=recipient, status="pending",
                    attempts=0, max_attempts=max_attempts,
                    artifact_location=publication.artifact_location, run_id=publication.run_id,
                    created_at=now, updated_at=now,
                ),
            )
            rows.append(row_id)
    return rows


def _lease_expired(now: datetime):
    return and_(d.status == "sending", or_(d.lease_expires_at.is_(None), d.lease_expires_at <= now))


def _due(now: datetime):
    return and_(d.status.in_(CLAIMABLE), or_(d.next_attempt_at.is_(None), d.next_attempt_at <= now))


def claim(engine: Engine, row_id: str, lease_s: float, now: datetime) -> Claim | None:
    """Take the row for one attempt, or None if it is not ours to send now."""
    lease_until = now + timedelta(seconds=lease_s)
    with engine.begin() as conn:
        # A crashed worker used the last attempt: the outcome is unknown, so stop loudly.
        conn.execute(
            update(deliveries)
            .where(d.id == row_id, _lease_expired(now), d.attempts >= d.max_attempts)
            .values(
                status="dead", lease_expires_at=None, next_attempt_at=None, updated_at=now,
                last_error="lease expired during the last allowed attempt (worker stopped "
                "before recording the outcome); not retried automatically",
            )
        )
        result = conn.execute(
            update(deliveries)
            .where(d.id == row_id, or_(_due(now), _lease_expired(now)))
            .values(
                status="sending", lease_expires_at=lease_until, attempts=d.attempts + 1,
                updated_at=now,
            )
        )
        if result.rowcount != 1:
            return None
        row = conn.execute(select(deliveries).where(d.id == row_id)).mappings().one()
    return Claim(
        id=row["id"], report_id=row["report_id"], organization_id=row["organization_id"],
        period=row["period"], artifact_sha256=row["artifact_sha256"],
        destination=row["destination"], channel=row["channel"], recipient=row["recipient"],
        attempt=row["attempts"], max_attempts=row["max_attempts"],
        lease_expires_at=row["lease_expires_at"], artifact_location=row["artifact_location"],
        run_id=row["run_id"],
    )


def mark_sent(engine: Engine, row_id: str, provider_response: str | None, now: datetime) -> bool:
    """Record the provider's acceptance; False when the row was already sent."""
    with engine.begin() as conn:
        result = conn.execute(
            update(deliveries)
            .where(d.id == row_id, d.status != "sent")
            .values(
                status="sent", provider_response=_clip(provider_response), sent_at=now,
                lease_expires_at=None, next_attempt_at=None, updated_at=now,
            )
        )
    return result.rowcount == 1


def record_failure(
    engine: Engine,
    row_id: str,
    error: str,
    now: datetime,
    retry,
    retryable: bool,
    retry_after_s: float | None,
    *,
    attempt: int | None = None,
    jitter: str = "equal",
    rand: Callable[[], float] | None = None,
) -> FailureRecord:
    """`mark_failed` with the scheduled time and delay returned.

    Only a row in `sending` changes (and, when `attempt` is given, only if no one re-claimed it
    since: the attempt number is the fencing token). The next attempt waits the server's
    Retry-After when it gave one, otherwise the jittered backoff for this attempt.
    """
    with engine.begin() as conn:
        row = conn.execute(
            select(d.status, d.attempts, d.max_attempts, d.next_attempt_at).where(d.id == row_id)
        ).first()
        if row is None:
            raise LookupError(f"delivery {row_id} does not exist")
        if row.status != "sending" or (attempt is not None and row.attempts != attempt):
            return FailureRecord(row.status, row.next_attempt_at, None, applied=False)
        if not retryable or row.attempts >= row.max_attempts:
            status, next_at, delay = "dead", None, None
        else:
            if retry_after_s is not None:
                delay = max(0.0, float(retry_after_s))
            else:
                delay = policy_delay(retry, row.attempts - 1, jitter=jitter, rand=rand)
            status, next_at = "failed", now + timedelta(seconds=delay)
        result = conn.execute(
            update(deliveries)
            .where(d.id == row_id, d.status == "sending", d.attempts == row.attempts)
            .values(
                status=status, last_error=_clip(error), next_attempt_at=next_at,
                lease_expires_at=None, updated_at=now,
            )
        )
        if result.rowcount != 1:
            current = conn.execute(select(d.status, d.next_attempt_at).where(d.id == row_id)).one()
            return FailureRecord(current.status, current.next_attempt_at, None, applied=False)
    return FailureRecord(status, next_at, delay, applied=True)


def mark_failed(
    engine: Engine,
    row_id: str,
    error: str,
    now: datetime,
    retry,
    retryable: bool,
    retry_after_s: float | None,
    **kwargs: Any,
) -> str:
    """Record a failed attempt; returns the new status: failed (retry later) or dead."""
    return record_failure(engine, row_id, error, now, retry, retryable, retry_after_s, **kwargs).status


def get_row(engine: Engine, row_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(deliveries).where(d.id == row_id)).mappings().first()
    return dict(row) if row else None


def due_rows(
    engine: Engine, now: datetime, limit: int = 100, *, pending_grace_s: float = 60.0
) -> list[dict[str, Any]]:
    """Rows the retry sweep should attempt now.

    Failed rows whose next attempt is due, sending rows whose lease expired (a worker died),
    and pending rows older than `pending_grace_s` (created by a run that stopped before its
    first claim; younger ones belong to a run in progress).
    """
    stale_pending = and_(
        d.status == "pending",
        or_(d.next_attempt_at.is_(None), d.next_attempt_at <= now),
        d.created_at <= now - timedelta(seconds=pending_grace_s),
    )
    failed_due = and_(
        d.status == "failed", or_(d.next_attempt_at.is_(None), d.next_attempt_at <= now)
    )
    query = (
        select(deliveries)
        .where(or_(failed_due, stale_pending, _lease_expired(now)))
        .order_by(d.updated_at, d.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def list_rows(
    engine: Engine,
    status: str | None = None,
    report_id: str | None = None,
    *,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    query = select(deliveries).order_by(d.created_at, d.report_id, d.period, d.destination, d.recipient)
    if status:
        query = query.where(d.status == status)
    if report_id:
        query = query.where(d.report_id == report_id)
    if limit:
        query = query.limit(limit)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


class RescheduleError(Exception):
    pass


def reschedule(engine: Engine, row_id: str, now: datetime) -> dict[str, Any]:
    """Make a failed or dead row due now (attempts kept: a dead row gets one more attempt).

    Returns {"id", "previous_status", "status", "attempts", "max_attempts"}. A sent row is
    never resent and a row being sent is left alone: both raise RescheduleError.
    """
    with engine.begin() as conn:
        row = conn.execute(
            select(d.status, d.attempts, d.max_attempts).where(d.id == row_id)
        ).first()
        if row is None:
            raise LookupError(f"delivery {row_id} does not exist")
        if row.status == "sent":
            raise RescheduleError(f"delivery {row_id} was already sent; it is never sent again")
        if row.status == "sending":
            raise RescheduleError(f"delivery {row_id} is being sent right now (lease held)")
        new_status = "pending" if row.status == "pending" else "failed"
        conn.execute(
            update(deliveries)
            .where(d.id == row_id, d.status == row.status)
            .values(status=new_status, next_attempt_at=now, lease_expires_at=None, updated_at=now)
        )
    return {
        "id": row_id, "previous_status": row.status, "status": new_status,
        "attempts": row.attempts, "max_attempts": row.max_attempts,
    }
