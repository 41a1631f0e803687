"""The delivery ledger's read side: rows by id, listings, what the sweep should attempt, and
the latest issue of a report period (what a re-issue supersedes, what a redelivery resends).

`now=None` means the database's clock (see ledger_db).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, or_, select

from compliance_reports.db.schema import deliveries
from compliance_reports.delivery.ledger_db import database_now

d = deliveries.c


def get_row(engine: Engine, row_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(select(deliveries).where(d.id == row_id)).mappings().first()
    return dict(row) if row else None


def due_rows(
    engine: Engine, now: datetime | None = None, limit: int = 100, *, pending_grace_s: float = 60.0
) -> list[dict[str, Any]]:
    """Rows the retry sweep should attempt now.

    Failed and unknown rows whose next attempt is due, sending rows whose lease expired (a
    worker died), and pending rows older than `pending_grace_s` (created by a run that stopped
    before its first claim; younger ones belong to a run in progress).
    """
    with engine.connect() as conn:
        now = now or database_now(conn)
        stale_pending = and_(
            d.status == "pending",
            or_(d.next_attempt_at.is_(None), d.next_attempt_at <= now),
            or_(d.created_at <= now - timedelta(seconds=pending_grace_s), d.next_attempt_at.is_not(None)),
        )
        retry_due = and_(
            or_(d.status == "failed", and_(d.status == "unknown", d.next_attempt_at.is_not(None))),
            or_(d.next_attempt_at.is_(None), d.next_attempt_at <= now),
        )
        lease_expired = and_(
            d.status == "sending", or_(d.lease_expires_at.is_(None), d.lease_expires_at <= now)
        )
        query = (
            select(deliveries)
            .where(or_(retry_due, stale_pending, lease_expired))
            .order_by(d.updated_at, d.id)
            .limit(limit)
        )
        return [dict(r) for r in conn.execute(query).mappings()]


def list_rows(
    engine: Engine,
    status: str | None = None,
    report_id: str | None = None,
    *,
    period: str | None = None,
    since: datetime | None = None,
    limit: int | None = None,
) -> list[dict[str, Any]]:
    """Ledger rows, oldest first: those created at or after `since`, the newest `limit` of them."""
    order = (d.created_at, d.report_id, d.period, d.destination, d.recipient, d.sequence)
    query = select(deliveries).order_by(*(c.desc() for c in order))
    if status:
        query = query.where(d.status == status)
    if report_id:
        query = query.where(d.report_id == report_id)
    if period:
        query = query.where(d.period == period)
    if since:
        query = query.where(d.created_at >= since)
    if limit:
        query = query.limit(limit)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()][::-1]


def latest_issue(
    engine: Engine, report_id: str, period: str, *, include_dead: bool = False
) -> dict[str, Any] | None:
    """The newest report delivery row of a period (by default one not given up), or None.

    Its content_fingerprint, artifact_sha256, run_id and artifact_location name the content
    recipients received last.
    """
    conditions = [d.report_id == report_id, d.period == period, d.purpose != "alert"]
    if not include_dead:
        conditions.append(d.status != "dead")
    query = (
        select(deliveries)
        .where(*conditions)
        .order_by(d.created_at.desc(), d.sequence.desc())
        .limit(1)
    )
    with engine.connect() as conn:
        row = conn.execute(query).mappings().first()
    return dict(row) if row else None
