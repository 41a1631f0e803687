"""The delivery ledger: every delivery on record, each sent exactly once (DESIGN section 6).

Identity of a row: (report_id, period, content_fingerprint, destination, recipient, sequence).
The fingerprint is the document's content without run-specific fields (reports/document.py),
so a second run of a period over unchanged audit rows finds the rows of the first and sends
nothing. `sequence` is 0 for the delivery of a content to a recipient; a deliberate redelivery
(`add_redelivery_rows`), or content sent again after a newer one, gets the next number. The row
id is derived from the identity (`delivery_id`), so it is the same on every attempt and in every
process; webhooks send it as webhook-id and Idempotency-Key, email as the Message-ID.

State machine (every transition is one conditional UPDATE in one transaction; the WHERE clause
is the guard and rowcount tells whether this process won). Times come from the database's clock
(ledger_db), unless a caller passes `now` (tests).

    pending --claim--> sending                                  (attempts += 1, lease set)
    failed|unknown --claim, next_attempt_at <= now--> sending
    sending --renew_lease (same attempt)--> sending             (heartbeat during a send)
    sending --mark_transmitting--> sending, transmit_attempt = attempt   (point of no return)
    sending --claim, lease expired--> sending                   (crash recovery; possible_duplicate
                                                                 when the crashed attempt transmitted)
    sending --lease expired after give_up_at--> dead, or unknown when it may have been delivered
    sending --mark_sent--> sent                                 (terminal: never sent again)
    sending --record_failure, retryable, now < give_up_at--> failed (unknown when the outcome of
                                                                 the attempt is unknown), next_attempt_at = backoff
    sending --record_failure, not retryable or now >= give_up_at--> dead (unknown, not due, when
                                                                 an attempt may have delivered)
    sending --a second attempt with an unknown outcome (reported or crashed)--> unknown, not due
    failed|dead|unknown --reschedule (CLI `deliveries retry`)--> due now

`possible_duplicate` is set once any attempt's outcome was unknown; it stays set. Automatic
retries resend such a row with the same id once more at most: a second unknown outcome leaves it
`unknown` for a person (`deliveries retry --id`), so a receiver that ignores the id gets at
most one extra copy. A late `mark_sent` from a worker whose lease had expired still records
`sent` (the provider accepted it: the record must say so).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping, Sequence

from sqlalchemy import Engine, and_, case, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from compliance_reports.db.schema import deliveries
from compliance_reports.delivery.backoff import policy_delay
from compliance_reports.delivery.errors import MAX_ERROR_CHARS
from compliance_reports.delivery.ledger_db import database_now
from compliance_reports.delivery.ledger_queries import (  # noqa: F401 - the ledger's read side
    due_rows,
    get_row,
    latest_issue,
    list_rows,
)

STATUSES = ("pending", "sending", "sent", "failed", "unknown", "dead")
PURPOSES = ("delivery", "reissue", "redelivery", "alert")
DEFAULT_GIVE_UP_H = 24.0

d = deliveries.c


def delivery_id(
    report_id: str, period: str, fingerprint: str, destination: str, recipient: str, sequence: int = 0
) -> str:
    """sha256 hex (first 32 characters) of the identity fields joined with NUL.

    Sequence 0 hashes the five fields alone, so rows written before sequences existed keep
    their ids.
    """
    fields = [report_id, period, fingerprint, destination, recipient]
    if sequence:
        fields.append(str(sequence))
    return hashlib.sha256("\0".join(fields).encode("utf-8")).hexdigest()[:32]


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
    # Called by a channel right before the point of no return (see attempt.deliver_row).
    on_transmit: Callable[[], None] | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class FailureRecord:
    status: str  # failed | unknown | dead (or the row's status when this call changed nothing)
    next_attempt_at: datetime | None
    delay_s: float | None
    applied: bool


def _clip(text: str | None) -> str | None:
    if text is not None and len(text) > MAX_ERROR_CHARS:
        return text[: MAX_ERROR_CHARS - 3] + "..."
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


def _row_values(*, now: datetime, give_up_after_h: float, **values: Any) -> dict[str, Any]:
    return dict(
        status="pending", attempts=0, possible_duplicate=False, created_at=now, updated_at=now,
        give_up_at=now + timedelta(hours=give_up_after_h), **values,
    )


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
    now: datetime | None = None,
    give_up_after_h: float = DEFAULT_GIVE_UP_H,
    content_fingerprint: str | None = None,
    purpose: str = "delivery",
) -> str:
    """Insert the (sequence 0) row for this identity unless it exists; returns its id."""
    fingerprint = content_fingerprint or artifact_sha256
    row_id = delivery_id(report_id, period, fingerprint, destination, recipient)
    with engine.begin() as conn:
        now = now or database_now(conn)
        _insert_if_absent(conn, _row_values(
            now=now, give_up_after_h=give_up_after_h, id=row_id, report_id=report_id,
            organization_id=organization_id, period=period, artifact_sha256=artifact_sha256,
            content_fingerprint=fingerprint, sequence=0, purpose=purpose, destination=destination,
            channel=channel, recipient=recipient, max_attempts=max_attempts,
            artifact_location=artifact_location, run_id=run_id,
        ))
    return row_id


def _publication_row(conn, publication, destination, recipient: str, now: datetime) -> str:
    """The row that delivers this publication's content to one recipient (created if needed).

    The recipient's latest row decides: the same content means that row (sent, under way or
    given up: nothing new). Otherwise the latest row not given up decides: the same content
    means the recipient has it already (the newer content never arrived); other content means
    a new row that re-issues it; none means a new row.
    """
    fingerprint = publication.fingerprint
    same_recipient = and_(
        d.report_id == publication.report_id, d.period == publication.period,
        d.destination == destination.name, d.recipient == recipient, d.purpose != "alert",
    )

    def latest(*conditions):
        return conn.execute(
            select(d.id, d.content_fingerprint, d.run_id, d.artifact_sha256)
            .where(same_recipient, *conditions)
            .order_by(d.created_at.desc(), d.sequence.desc())
            .limit(1)
        ).first()

    newest = latest()
    if newest is not None and newest.content_fingerprint == fingerprint:
        return newest.id
    live = latest(d.status != "dead") if newest is not None else None
    if live is not None and live.content_fingerprint == fingerprint:
        return live.id
    highest = conn.execute(
        select(func.max(d.sequence)).where(same_recipient, d.content_fingerprint == fingerprint)
    ).scalar()
    sequence = 0 if highest is None else highest + 1
    purpose, supersedes_run, supersedes_sha = "delivery", None, None
    if live is not None:
        purpose, supersedes_run, supersedes_sha = "reissue", live.run_id, live.artifact_sha256
    elif publication.reissue_of:
        purpose = "reissue"
        supersedes_run = publication.reissue_of.get("run_id")
        supersedes_sha = publication.reissue_of.get("manifest_sha256")
    row_id = delivery_id(publication.report_id, publication.period, fingerprint, destination.name,
                         recipient, sequence)
    _insert_if_absent(conn, _row_values(
        now=now, give_up_after_h=destination.retry.give_up_after_h, id=row_id,
        report_id=publication.report_id, organization_id=publication.organization_id,
        period=publication.period, artifact_sha256=publication.artifact_sha256,
        content_fingerprint=fingerprint, sequence=sequence, purpose=purpose,
        supersedes_run_id=supersedes_run, supersedes_sha256=supersedes_sha,
        destination=destination.name, channel=destination.type, recipient=recipient,
        max_attempts=destination.retry.max_attempts,
        artifact_location=publication.artifact_location, run_id=publication.run_id,
    ))
    return row_id


def ensure_publication_rows(
    engine: Engine,
    publication,
    plan: Sequence[tuple[Any, Sequence[str]]],
    *,
    now: datetime | None = None,
) -> dict[str, list[str]]:
    """Every (destination, recipient) row of a publication, in ONE transaction.

    `plan` is [(destination, recipients)]; returns destination name -> row ids in recipient
    order. Written before the first send, so the sweep sees every row even if the run stops.
    """
    rows: dict[str, list[str]] = {}
    with engine.begin() as conn:
        now = now or database_now(conn)
        for destination, recipients in plan:
            rows[destination.name] = [
                _publication_row(conn, publication, destination, recipient, now) for recipient in recipients
            ]
    return rows


def ensure_rows(
    engine: Engine,
    publication,
    destination,
    recipients: list[str],
    max_attempts: int | None = None,
    *,
    now: datetime | None = None,
) -> list[str]:
    """One row per recipient of `destination` for this publication (see ensure_publication_rows)."""
    if max_attempts is not None and max_attempts != destination.retry.max_attempts:
        destination = destination.model_copy(
            update={"retry": destination.retry.model_copy(update={"max_attempts": max_attempts})}
        )
    return ensure_publication_rows(engine, publication, [(destination, recipients)], now=now)[destination.name]


def add_redelivery_rows(
    engine: Engine,
    issue: Mapping[str, Any],
    plan: Sequence[tuple[Any, Sequence[str]]],
    *,
    now: datetime | None = None,
) -> dict[str, list[str]]:
    """New rows (purpose redelivery, next sequence) that send `issue`'s content again on purpose.

    `issue` is a ledger row naming the content (see ledger_queries.latest_issue). New rows have
    new ids, so receivers do not drop them as duplicates: the resend is deliberate.
    """
    rows: dict[str, list[str]] = {}
    with engine.begin() as conn:
        now = now or database_now(conn)
        for destination, recipients in plan:
            ids = []
            for recipient in recipients:
                highest = conn.execute(
                    select(func.max(d.sequence)).where(
                        d.report_id == issue["report_id"], d.period == issue["period"],
                        d.content_fingerprint == issue["content_fingerprint"],
                        d.destination == destination.name, d.recipient == recipient,
                    )
                ).scalar()
                sequence = 1 if highest is None else highest + 1
                row_id = delivery_id(issue["report_id"], issue["period"], issue["content_fingerprint"],
                                     destination.name, recipient, sequence)
                conn.execute(insert(deliveries).values(**_row_values(
                    now=now, give_up_after_h=destination.retry.give_up_after_h, id=row_id,
                    report_id=issue["report_id"], organization_id=issue["organization_id"],
                    period=issue["period"], artifact_sha256=issue["artifact_sha256"],
                    content_fingerprint=issue["content_fingerprint"], sequence=sequence,
                    purpose="redelivery", destination=destination.name, channel=destination.type,
                    recipient=recipient, max_attempts=destination.retry.max_attempts,
                    artifact_location=issue["artifact_location"], run_id=issue["run_id"],
                    next_attempt_at=now,
                )))
                ids.append(row_id)
            rows[destination.name] = ids
    return rows


def _lease_expired(now: datetime):
    return and_(d.status == "sending", or_(d.lease_expires_at.is_(None), d.lease_expires_at <= now))


def _due(now: datetime):
    waiting = and_(d.status.in_(("pending", "failed")), or_(d.next_attempt_at.is_(None), d.next_attempt_at <= now))
    # An unknown row without a next attempt was given up on: only an operator makes it due.
    unknown = and_(d.status == "unknown", d.next_attempt_at.is_not(None), d.next_attempt_at <= now)
    return or_(waiting, unknown)


# The attempt in flight had begun transmitting: its outcome is unknown.
_TRANSMITTED = and_(d.transmit_attempt.is_not(None), d.transmit_attempt == d.attempts)
_CRASHED = "the worker of the previous attempt stopped before recording its outcome (lease expired)"


def claim(engine: Engine, row_id: str, lease_s: float, now: datetime | None = None) -> Claim | None:
    """Take the row for one attempt, or None if it is not ours to send now."""
    with engine.begin() as conn:
        now = now or database_now(conn)
        maybe_delivered = or_(d.possible_duplicate, _TRANSMITTED)
        second_unknown = and_(d.possible_duplicate, _TRANSMITTED)
        past_give_up = and_(d.give_up_at.is_not(None), d.give_up_at <= now)
        # A crashed attempt after the give-up time, or a second attempt whose outcome is
        # unknown: stop automatic retries (never more than one extra copy), and never call it
        # dead if it may have reached the receiver.
        conn.execute(
            update(deliveries)
            .where(d.id == row_id, _lease_expired(now), or_(past_give_up, second_unknown))
            .values(
                status=case((maybe_delivered, "unknown"), else_="dead"),
                possible_duplicate=maybe_delivered,
                lease_expires_at=None, next_attempt_at=None, updated_at=now,
                last_error=case(
                    (second_unknown, _CRASHED + " after sending, and an earlier attempt's outcome was "
                     "unknown too: not retried automatically (at most one extra copy)"),
                    (_TRANSMITTED, _CRASHED + " after sending, past the give-up time: it may have "
                     "been delivered; not retried automatically"),
                    else_=_CRASHED + " before sending, past the give-up time; not retried",
                ),
            )
        )
        crashed_after_sending = and_(d.status == "sending", _TRANSMITTED)
        result = conn.execute(
            update(deliveries)
            .where(d.id == row_id, or_(_due(now), _lease_expired(now)))
            .values(
                status="sending", lease_expires_at=now + timedelta(seconds=lease_s),
                attempts=d.attempts + 1, updated_at=now,
                possible_duplicate=or_(d.possible_duplicate, crashed_after_sending),
                last_error=case(
                    (crashed_after_sending, _CRASHED + " after sending: possible duplicate"),
                    (d.status == "sending", _CRASHED + " before sending"),
                    else_=d.last_error,
                ),
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


def _held(row_id: str, attempt: int):
    return and_(d.id == row_id, d.status == "sending", d.attempts == attempt)


def renew_lease(engine: Engine, row_id: str, attempt: int, lease_s: float, now: datetime | None = None) -> bool:
    """Extend the lease of a claim still held; False when the row moved on (lease lost)."""
    with engine.begin() as conn:
        now = now or database_now(conn)
        result = conn.execute(
            update(deliveries).where(_held(row_id, attempt))
            .values(lease_expires_at=now + timedelta(seconds=lease_s), updated_at=now)
        )
    return result.rowcount == 1


def mark_transmitting(engine: Engine, row_id: str, attempt: int, now: datetime | None = None) -> bool:
    """Record that this attempt is about to pass the point of no return; False: lease lost."""
    with engine.begin() as conn:
        now = now or database_now(conn)
        result = conn.execute(
            update(deliveries).where(_held(row_id, attempt)).values(transmit_attempt=attempt, updated_at=now)
        )
    return result.rowcount == 1


def mark_sent(engine: Engine, row_id: str, provider_response: str | None, now: datetime | None = None) -> bool:
    """Record the provider's acceptance; False when the row was already sent."""
    with engine.begin() as conn:
        now = now or database_now(conn)
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
    now: datetime | None,
    retry,
    retryable: bool,
    retry_after_s: float | None,
    *,
    attempt: int | None = None,
    outcome_unknown: bool = False,
    jitter: str = "equal",
    rand: Callable[[], float] | None = None,
) -> FailureRecord:
    """Record a failed (or unknown-outcome) attempt, with the next attempt's time.

    Only a row in `sending` changes (and, when `attempt` is given, only if no one re-claimed it
    since: the attempt number is the fencing token). The next attempt waits the server's
    Retry-After when it gave one, otherwise the jittered backoff for this attempt; a row that
    cannot be retried, or fails at or after its give-up time, is dead, or `unknown` (not due)
    when an attempt may have delivered it.
    """
    with engine.begin() as conn:
        now = now or database_now(conn)
        row = conn.execute(
            select(d.status, d.attempts, d.next_attempt_at, d.give_up_at, d.created_at,
                   d.possible_duplicate).where(d.id == row_id)
        ).first()
        if row is None:
            raise LookupError(f"delivery {row_id} does not exist")
        if row.status != "sending" or (attempt is not None and row.attempts != attempt):
            return FailureRecord(row.status, row.next_attempt_at, None, applied=False)
        possible = bool(row.possible_duplicate) or outcome_unknown
        give_up_at = row.give_up_at or row.created_at + timedelta(hours=retry.give_up_after_h)
        # A second unknown outcome ends automatic retries: never more than one extra copy.
        second_unknown = outcome_unknown and bool(row.possible_duplicate)
        if not retryable or now >= give_up_at or second_unknown:
            status, next_at, delay = ("unknown" if possible else "dead"), None, None
        else:
            if retry_after_s is not None:
                delay = max(0.0, float(retry_after_s))
            else:
                delay = policy_delay(retry, row.attempts - 1, jitter=jitter, rand=rand)
            next_at = now + timedelta(seconds=delay)
            if next_at > give_up_at:  # one last attempt at the give-up time (or when the server allows)
                next_at = max(give_up_at, now + timedelta(seconds=max(0.0, retry_after_s or 0.0)))
                delay = (next_at - now).total_seconds()
            status = "unknown" if outcome_unknown else "failed"
        result = conn.execute(
            update(deliveries)
            .where(d.id == row_id, d.status == "sending", d.attempts == row.attempts)
            .values(
                status=status, last_error=_clip(error), next_attempt_at=next_at,
                lease_expires_at=None, updated_at=now, possible_duplicate=possible,
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
    now: datetime | None,
    retry,
    retryable: bool,
    retry_after_s: float | None,
    **kwargs: Any,
) -> str:
    """Record a failed attempt; returns the new status: failed, unknown or dead."""
    return record_failure(engine, row_id, error, now, retry, retryable, retry_after_s, **kwargs).status


class RescheduleError(Exception):
    pass


def reschedule(engine: Engine, row_id: str, now: datetime | None = None) -> dict[str, Any]:
    """Make a failed, unknown or dead row due now (attempts kept: a row past its give-up time
    gets one more attempt).

    Returns {"id", "previous_status", "status", "attempts", "max_attempts", "possible_duplicate"}.
    A sent row is never resent and a row being sent is left alone: both raise RescheduleError.
    """
    with engine.begin() as conn:
        now = now or database_now(conn)
        row = conn.execute(
            select(d.status, d.attempts, d.max_attempts, d.possible_duplicate).where(d.id == row_id)
        ).first()
        if row is None:
            raise LookupError(f"delivery {row_id} does not exist")
        if row.status == "sent":
            raise RescheduleError(f"delivery {row_id} was already sent; it is never sent again "
                                  "(`deliveries redeliver` sends a new copy on purpose)")
        if row.status == "sending":
            raise RescheduleError(f"delivery {row_id} is being sent right now (lease held)")
        new_status = {"pending": "pending", "unknown": "unknown"}.get(row.status, "failed")
        conn.execute(
            update(deliveries)
            .where(d.id == row_id, d.status == row.status)
            .values(status=new_status, next_attempt_at=now, lease_expires_at=None, updated_at=now)
        )
    return {
        "id": row_id, "previous_status": row.status, "status": new_status,
        "attempts": row.attempts, "max_attempts": row.max_attempts,
        "possible_duplicate": bool(row.possible_duplicate),
    }
