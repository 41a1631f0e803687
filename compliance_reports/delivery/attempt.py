"""One ledger row, one delivery attempt loop: claim (lease) -> send -> record sent | failed.

Below both the publication dispatcher and the failure alerts, which send their rows through the
same loop. A row that is already sent is skipped ("already_sent"); one leased by another worker
is left alone ("in_progress"). In-run retries stop at the policy's max_attempts (the row becomes
dead) or when the next wait is longer than `max_in_run_wait_s` (default: the policy's
max_delay_s, at least 60 s), leaving the row `failed` for the sweep.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable

from sqlalchemy import Engine

from compliance_reports.config.models import RetryPolicy
from compliance_reports.delivery import ledger
from compliance_reports.delivery.errors import DeliveryError, SendResult, redact

logger = logging.getLogger("compliance_reports.delivery")

# In-run retries wait up to max(policy max_delay_s, this) (a server's Retry-After may exceed
# the policy's own cap); longer waits are left to the retry sweep.
IN_RUN_WAIT_FLOOR_S = 60.0

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
    status: str  # sent | already_sent | failed | dead | in_progress
    attempts: int
    provider_response: str | None = None
    error: str | None = None
    next_attempt_at: datetime | None = None

    @property
    def delivered(self) -> bool:
        return self.status in ("sent", "already_sent")


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
    )


def _record_sent(engine, row_id, response, now_fn, sleep_fn, tries: int = 3) -> None:
    """mark_sent, retried briefly: losing this write is the one way a row could be resent."""
    from sqlalchemy.exc import OperationalError

    for attempt in range(1, tries + 1):
        try:
            ledger.mark_sent(engine, row_id, response, now_fn())
            return
        except OperationalError:
            if attempt == tries:
                raise
            sleep_fn(0.5 * attempt)


def deliver_row(
    engine: Engine,
    row_id: str,
    send: Sender,
    retry: RetryPolicy,
    *,
    now_fn: Callable[[], datetime] = utcnow,
    sleep_fn: Callable[[float], None] = time.sleep,
    lease_s: float = 300,
    in_run_retries: bool = True,
    max_in_run_wait_s: float | None = None,
    log: Log | None = None,
    secrets: Iterable[str] = (),
    rand: Callable[[], float] | None = None,
) -> DeliveryOutcome:
    """Claim, send and record one ledger row, retrying in-run while waits are short."""
    log = log or logger.info
    secrets = list(secrets)
    max_wait = max(retry.max_delay_s, IN_RUN_WAIT_FLOOR_S) if max_in_run_wait_s is None else max_in_run_wait_s
    idle_waits = 0
    while True:
        now = now_fn()
        claim = ledger.claim(engine, row_id, lease_s, now)
        if claim is None:
            row = ledger.get_row(engine, row_id)
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
            wait = (next_at - now).total_seconds() if next_at else 0.0
            if in_run_retries and idle_waits < 3 and wait <= max_wait:
                idle_waits += 1
                sleep_fn(max(wait, 0.0))
                continue
            log(f"{label}: {status}, next attempt at {next_at}")
            return _outcome(row, status)
        idle_waits = 0
        label = f"delivery {claim.id} ({claim.destination}/{claim.channel} -> {claim.recipient})"
        try:
            result = send(claim, now)
        except DeliveryError as exc:
            error = exc
        except Exception as exc:  # noqa: BLE001 - an unexpected failure is still recorded
            error = DeliveryError(f"{type(exc).__name__}: {exc}", retryable=True)
        else:
            response = redact(result.provider_response, secrets)
            _record_sent(engine, claim.id, response, now_fn, sleep_fn)
            log(f"{label}: sent on attempt {claim.attempt}: {response}")
            row = ledger.get_row(engine, claim.id)
            return _outcome(row, "sent")
        message = redact(str(error), secrets) or type(error).__name__
        record = ledger.record_failure(
            engine, claim.id, message, now_fn(), retry, error.retryable, error.retry_after_s,
            attempt=claim.attempt, rand=rand,
        )
        row = ledger.get_row(engine, claim.id)
        kind = "retryable" if error.retryable else "not retryable"
        if not record.applied:  # the lease expired and another worker took the row over
            status = {"sending": "in_progress", "sent": "already_sent"}.get(row["status"], row["status"])
            log(f"{label}: attempt {claim.attempt} failed: {message}; the row moved on "
                f"meanwhile (now {row['status']})")
            return _outcome(row, status)
        if record.status == "dead":
            log(f"{label}: attempt {claim.attempt} failed ({kind}): {message}; dead after "
                f"{row['attempts']} of {row['max_attempts']} attempt(s)")
            return _outcome(row, "dead")
        delay = record.delay_s or 0.0
        hint = f" (Retry-After {error.retry_after_s:g}s)" if error.retry_after_s is not None else ""
        log(f"{label}: attempt {claim.attempt} of {row['max_attempts']} failed ({kind}): {message}; "
            f"next attempt in {delay:.3g}s{hint}")
        if not in_run_retries or delay > max_wait:
            return _outcome(row, "failed")
        sleep_fn(delay)
