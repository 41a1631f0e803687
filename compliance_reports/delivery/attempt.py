"""One ledger row, one delivery attempt loop: claim (lease) -> send -> record sent | failed.

Below both the publication dispatcher and the failure alerts, which send their rows through the
same loop. A row that is already sent is skipped ("already_sent"); one leased by another worker
is left alone ("in_progress").

Budget: in-run retries make at most the policy's max_attempts attempts in this call and wait at
most `max_in_run_wait_s` (default: the policy's max_delay_s, at least 60 s) between them; then the
row is left `failed` (or `unknown`) with its next attempt time for the retry sweep, which keeps
trying until the row's give-up time (ledger). Only a non-retryable error, or a failure after the
give-up time, makes a row dead.

While the channel sends, `LeaseKeeper` renews the lease. Right before the point of no return the
channel calls `claim.on_transmit`, which records the attempt as transmitting: if this worker dies
before recording the outcome, whoever takes the row over knows the receiver may have a copy.

Database errors around one row (claim, transmit mark, recording) are retried with backoff
(ledger_db.retry_transient); when the ledger stays unavailable the row is left as it is (pending,
failed or sending with a lease that will expire) for the retry sweep, and the outcome says
"unrecorded": the caller goes on with the other rows.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Callable, Iterable

from sqlalchemy import Engine

from compliance_reports.config.models import RetryPolicy
from compliance_reports.delivery import ledger
from compliance_reports.delivery.errors import DeliveryError, LeaseLost, SendResult, redact
from compliance_reports.delivery.lease import LeaseKeeper
from compliance_reports.delivery.ledger_db import LedgerUnavailable, database_time, retry_transient

logger = logging.getLogger("compliance_reports.delivery")

# In-run retries wait up to max(policy max_delay_s, this) (a server's Retry-After may exceed
# the policy's own cap); longer waits are left to the retry sweep.
IN_RUN_WAIT_FLOOR_S = 60.0
# Lease of callers that name no destination-derived lease (alerts, tests).
DEFAULT_LEASE_S = 300.0
# Recording `sent` is retried for up to this long (bounded by half the lease): losing that
# write is the one way a delivered row could be sent again.
RECORD_SENT_BUDGET_S = 120.0

Sender = Callable[[ledger.Claim, datetime], SendResult]
Log = Callable[[str], None]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class DeliveryOutcome:
    row_id: str
    destination: str
    channel: str
    recipient: str
    status: str  # sent | already_sent | failed | unknown | dead | in_progress | unrecorded
    attempts: int
    provider_response: str | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None
    possible_duplicate: bool = False

    @property
    def delivered(self) -> bool:
        return self.status in ("sent", "already_sent")

    @property
    def given_up(self) -> bool:
        """Dead, or unknown with no further attempt planned: a person has to look at it."""
        return self.status == "dead" or (self.status == "unknown" and self.next_attempt_at is None)


def failing_sender(error: DeliveryError) -> Sender:
    def send(claim: ledger.Claim, now: datetime) -> SendResult:
        raise error

    return send


def _outcome(row: dict, status: str, **extra) -> DeliveryOutcome:
    return DeliveryOutcome(
        row_id=row["id"], destination=row["destination"], channel=row["channel"],
        recipient=row["recipient"], status=status, attempts=row["attempts"],
        provider_response=extra.get("provider_response", row.get("provider_response")),
        error=extra.get("error", row.get("last_error")),
        next_attempt_at=extra.get("next_attempt_at", row.get("next_attempt_at")),
        possible_duplicate=bool(row.get("possible_duplicate")),
    )


def _unrecorded(row_id: str, claim: ledger.Claim | None, error: str) -> DeliveryOutcome:
    """The ledger could not be read or written for this row (names unknown without a claim)."""
    return DeliveryOutcome(
        row_id=row_id, destination=claim.destination if claim else "",
        channel=claim.channel if claim else "", recipient=claim.recipient if claim else "",
        status="unrecorded", attempts=claim.attempt if claim else 0, error=error,
    )


def deliver_row(
    engine: Engine,
    row_id: str,
    send: Sender,
    retry: RetryPolicy,
    *,
    now_fn: Callable[[], datetime] | None = None,
    sleep_fn: Callable[[float], None] = time.sleep,
    lease_s: float | None = None,
    in_run_retries: bool = True,
    max_in_run_wait_s: float | None = None,
    log: Log | None = None,
    secrets: Iterable[str] = (),
    rand: Callable[[], float] | None = None,
) -> DeliveryOutcome:
    """Claim, send and record one ledger row, retrying in-run within the short budget.

    `now_fn` overrides the database's clock for the ledger (tests); channel timestamps (webhook
    timestamp, mail Date) use it too, else this host's clock.
    """
    log = log or logger.info
    secrets = list(secrets)
    lease_s = lease_s or DEFAULT_LEASE_S
    max_wait = max(retry.max_delay_s, IN_RUN_WAIT_FLOOR_S) if max_in_run_wait_s is None else max_in_run_wait_s

    def db(operation, what, **kwargs):
        return retry_transient(operation, what, sleep_fn=sleep_fn, log=log, **kwargs)

    def ledger_now() -> datetime | None:
        return now_fn() if now_fn else None

    attempts_here = 0
    idle_waits = 0
    while True:
        try:
            claim = db(lambda: ledger.claim(engine, row_id, lease_s, ledger_now()), f"claiming delivery {row_id}")
            row = None if claim else db(lambda: ledger.get_row(engine, row_id), f"reading delivery {row_id}")
        except LedgerUnavailable as exc:
            log(f"delivery {row_id}: {exc}; left for the retry sweep")
            return _unrecorded(row_id, None, str(exc))
        if claim is None:
            if row is None:
                raise LookupError(f"delivery {row_id} does not exist")
            status = row["status"]
            label = f"delivery {row_id} ({row['destination']}/{row['channel']} -> {row['recipient']})"
            if status == "sent":
                log(f"{label}: already sent, not sent again")
                return _outcome(row, "already_sent")
            if status == "dead":
                log(f"{label}: dead after {row['attempts']} attempt(s); not retried")
                return _outcome(row, "dead")
            if status == "sending":
                log(f"{label}: being sent by another worker (lease until {row['lease_expires_at']})")
                return _outcome(row, "in_progress")
            next_at = row["next_attempt_at"]
            if next_at is None and status == "unknown":
                log(f"{label}: outcome unknown after the give-up time; not retried automatically")
                return _outcome(row, status)
            try:
                now = now_fn() if now_fn else db(lambda: database_time(engine), "reading the database clock")
            except LedgerUnavailable as exc:
                return _unrecorded(row_id, None, str(exc))
            wait = (next_at - now).total_seconds() if next_at else 0.0
            if in_run_retries and attempts_here < retry.max_attempts and idle_waits < 3 and wait <= max_wait:
                idle_waits += 1
                sleep_fn(max(wait, 0.0))
                continue
            log(f"{label}: {status}, next attempt at {next_at}")
            return _outcome(row, status)
        idle_waits = 0
        attempts_here += 1
        label = f"delivery {claim.id} ({claim.destination}/{claim.channel} -> {claim.recipient})"
        claim = replace(claim, on_transmit=_transmit_marker(engine, claim, ledger_now, db))
        with LeaseKeeper(engine, claim, lease_s, now_fn, log):
            try:
                result = send(claim, now_fn() if now_fn else utcnow())
            except DeliveryError as exc:
                error = exc
            except Exception as exc:  # noqa: BLE001 - an unexpected failure is still recorded
                error = DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True)
            else:
                response = redact(result.provider_response, secrets)
                try:
                    db(lambda: ledger.mark_sent(engine, claim.id, response, ledger_now()),
                       f"recording delivery {claim.id} as sent",
                       budget_s=min(RECORD_SENT_BUDGET_S, lease_s / 2))
                except LedgerUnavailable as exc:
                    log(f"{label}: sent on attempt {claim.attempt} ({response}) but {exc}; the row "
                        "stays `sending` until its lease expires, then the sweep resends it with the "
                        "same id (possible duplicate)")
                    return _unrecorded(claim.id, claim, f"sent but not recorded: {exc}")
                log(f"{label}: sent on attempt {claim.attempt}: {response}")
                row = _read_or(engine, claim, db)
                return _outcome(row, "sent") if row else _unrecorded(claim.id, claim, "sent; row unreadable")
        message = redact(str(error), secrets) or type(error).__name__
        if error.outcome_unknown:
            message = f"outcome unknown, may have been delivered: {message}"
        try:
            record = db(lambda: ledger.record_failure(
                engine, claim.id, message, ledger_now(), retry, error.retryable, error.retry_after_s,
                attempt=claim.attempt, outcome_unknown=error.outcome_unknown, rand=rand,
            ), f"recording the failure of delivery {claim.id}")
            row = db(lambda: ledger.get_row(engine, claim.id), f"reading delivery {claim.id}")
        except LedgerUnavailable as exc:
            log(f"{label}: attempt {claim.attempt} failed ({message}) and {exc}; left for the sweep")
            return _unrecorded(claim.id, claim, f"{message}; not recorded: {exc}")
        kind = "retryable" if error.retryable else "not retryable"
        if not record.applied:  # the lease expired and another worker took the row over
            status = {"sending": "in_progress", "sent": "already_sent"}.get(row["status"], row["status"])
            log(f"{label}: attempt {claim.attempt} failed: {message}; the row moved on "
                f"meanwhile (now {row['status']})")
            return _outcome(row, status)
        if record.next_attempt_at is None:
            what = "dead" if record.status == "dead" else "outcome unknown (possible duplicate), not retried"
            log(f"{label}: attempt {claim.attempt} failed ({kind}): {message}; {what} after "
                f"{row['attempts']} attempt(s)")
            return _outcome(row, record.status)
        delay = record.delay_s or 0.0
        hint = f" (Retry-After {error.retry_after_s:g}s)" if error.retry_after_s is not None else ""
        handover = not in_run_retries or attempts_here >= retry.max_attempts or delay > max_wait
        log(f"{label}: attempt {claim.attempt} failed ({kind}): {message}; next attempt in "
            f"{delay:.3g}s{hint}" + (" by the retry sweep" if handover else ""))
        if handover:
            return _outcome(row, record.status)
        sleep_fn(delay)


def _read_or(engine, claim, db):
    try:
        return db(lambda: ledger.get_row(engine, claim.id), f"reading delivery {claim.id}")
    except LedgerUnavailable:
        return None


def _transmit_marker(engine, claim: ledger.Claim, ledger_now, db) -> Callable[[], None]:
    def mark() -> None:
        try:
            held = db(lambda: ledger.mark_transmitting(engine, claim.id, claim.attempt, ledger_now()),
                      f"marking delivery {claim.id} as transmitting")
        except LedgerUnavailable as exc:
            raise DeliveryError(f"not sent: {exc}", retryable=True) from None
        if not held:
            raise LeaseLost(f"not sent: the lease of attempt {claim.attempt} was lost to another worker")

    return mark
