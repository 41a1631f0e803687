"""Deliver a publication to its destinations through the ledger (plain Python, no Dagster).

`deliver_publication` is what the publish job's delivery op calls once the files are exported
and stored; `retry_due` is the retry sweep. Both go through the same per-row loop:

    ensure row -> claim (lease) -> send via the channel -> mark sent | mark failed
                    ^                                              |
                    +---- sleep(backoff or Retry-After) <- failed -+  (in-run retries)

A row that is already sent is skipped ("already_sent"); one leased by another worker is left
alone ("in_progress"). In-run retries stop at the policy's max_attempts (the row becomes dead)
or when the next wait is longer than `max_in_run_wait_s` (default: the policy's max_delay_s,
at least 60 s),
leaving the row `failed` for the sweep. Storage destinations go first, so when the caller gave
no `link_for`, files stored by a storage destination provide the links that oversize emails
and large webhook files need.

Log lines name destinations, channels, recipients, row ids, statuses and errors; every error
and provider reply passes through `redact` with the destination's current secret values, and
no secret is ever formatted into a message in the first place.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Callable, Iterable, Sequence

from sqlalchemy import Engine

from compliance_reports.config_models import RetryPolicy
from compliance_reports.delivery import ledger
from compliance_reports.delivery.errors import DeliveryError, SendResult, redact, secret_values
from compliance_reports.delivery.publication import Publication

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


def recipients_for(destination) -> list[str]:
    """Ledger recipients: one per email address, the URL for a webhook, the base for storage."""
    from compliance_reports.delivery.email_channel import email_recipients
    from compliance_reports.delivery.storage_channel import storage_location
    from compliance_reports.delivery.webhook_channel import webhook_recipient

    if destination.type == "email":
        return email_recipients(destination)
    if destination.type == "webhook":
        return [webhook_recipient(destination)]
    if destination.type == "storage":
        return [storage_location(destination)]
    raise ValueError(f"unknown destination type {destination.type!r}")


def make_sender(destination, publication: Publication, problems: Sequence[str] = ()) -> Sender:
    """The channel call for one row of `destination`."""
    from compliance_reports.delivery.email_channel import send_email
    from compliance_reports.delivery.storage_channel import deliver_to_storage
    from compliance_reports.delivery.webhook_channel import send_webhook

    def send(claim: ledger.Claim, now: datetime) -> SendResult:
        if problems:
            raise DeliveryError("; ".join(problems), retryable=False)
        if destination.type == "email":
            return send_email(destination, publication, claim.recipient, row_id=claim.id, now=now)
        if destination.type == "webhook":
            return send_webhook(destination, publication, row_id=claim.id, now=now)
        if destination.type == "storage":
            return deliver_to_storage(destination, publication, now=now)
        raise DeliveryError(f"unknown destination type {destination.type!r}", retryable=False)

    return send


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


def deliver_publication(
    engine: Engine,
    publication: Publication,
    destinations: Sequence,
    *,
    now_fn: Callable[[], datetime] = utcnow,
    sleep_fn: Callable[[float], None] = time.sleep,
    lease_s: float = 300,
    in_run_retries: bool = True,
    log: Log | None = None,
    alert_destinations: Sequence = (),
    max_in_run_wait_s: float | None = None,
    rand: Callable[[], float] | None = None,
    verify_files: bool = True,
) -> list[DeliveryOutcome]:
    """Deliver every stored file of `publication` to every destination, exactly once.

    Running it again for the same publication sends nothing that was already sent. When a
    delivery ends dead and `alert_destinations` are given, one failure alert per report and
    period is sent (see alerts.notify_failure).
    """
    log = log or logger.info
    problems = publication.verify() if verify_files else []
    if problems:
        log(f"report {publication.report_id} period {publication.period}: stored files do not "
            f"match the manifest: {'; '.join(problems)}")
    ordered = sorted(destinations, key=lambda dest: 0 if dest.type == "storage" else 1)
    pub = publication
    outcomes: list[DeliveryOutcome] = []
    for dest in ordered:
        recipients = recipients_for(dest)
        row_ids = ledger.ensure_rows(engine, pub, dest, recipients, dest.retry.max_attempts, now=now_fn())
        send = make_sender(dest, pub, problems)
        dest_outcomes = [
            deliver_row(
                engine, row_id, send, dest.retry, now_fn=now_fn, sleep_fn=sleep_fn,
                lease_s=lease_s, in_run_retries=in_run_retries,
                max_in_run_wait_s=max_in_run_wait_s, log=log, secrets=secret_values(dest),
                rand=rand,
            )
            for row_id in row_ids
        ]
        outcomes.extend(dest_outcomes)
        if dest.type == "storage" and pub.link_for is None and all(o.delivered for o in dest_outcomes):
            from compliance_reports.delivery.storage_channel import link_factory

            pub = pub.with_links(link_factory(dest, pub))
    _alert_dead(engine, publication.report_id, publication.period, publication.organization_id,
                publication.run_id, outcomes, alert_destinations, now_fn=now_fn, sleep_fn=sleep_fn,
                lease_s=lease_s, log=log)
    return outcomes


def _alert_dead(engine, report_id, period, organization_id, run_id, outcomes, alert_destinations,
                **kwargs) -> None:
    dead = [o for o in outcomes if o.status == "dead"]
    if not dead or not alert_destinations:
        return
    from compliance_reports.delivery.alerts import AlertFields, notify_failure

    lines = [
        f"{o.destination} ({o.channel}) -> {o.recipient}: dead after {o.attempts} attempt(s): {o.error}"
        for o in dead
    ]
    message = f"{len(dead)} delivery(ies) failed permanently:\n" + "\n".join(lines)
    notify_failure(
        engine, alert_destinations,
        AlertFields(report_id=report_id, period=period, organization_id=organization_id, run_id=run_id),
        message, kind="delivery", **kwargs,
    )


def retry_due(
    engine: Engine,
    load_publication: Callable[[str, str, str], Publication],
    load_destination: Callable[[str], object],
    now: datetime | None = None,
    *,
    now_fn: Callable[[], datetime] | None = None,
    sleep_fn: Callable[[float], None] = time.sleep,
    lease_s: float = 300,
    limit: int = 100,
    pending_grace_s: float = 60.0,
    log: Log | None = None,
    load_alert_destinations: Callable[[str], Sequence] | None = None,
    rand: Callable[[], float] | None = None,
) -> list[DeliveryOutcome]:
    """The retry sweep: one attempt for every due row, from the STORED files.

    `load_publication(report_id, period, artifact_sha256)` returns the stored publication
    (never regenerated); its manifest sha256 must equal the row's, otherwise the row is dead.
    A missing artifact or destination (LookupError / FileNotFoundError) makes the row dead;
    other loading errors count as a retryable failed attempt. Failure-alert rows (see alerts)
    are resent from the alert stored in the row.
    """
    from compliance_reports.delivery.alerts import is_alert_row, resend_sender

    log = log or logger.info
    if now_fn is None:
        now_fn = (lambda: now) if now is not None else utcnow
    now = now or now_fn()
    rows = ledger.due_rows(engine, now, limit, pending_grace_s=pending_grace_s)
    publications: dict[tuple[str, str, str], Publication | DeliveryError] = {}
    outcomes: list[DeliveryOutcome] = []
    for row in rows:
        common = dict(now_fn=now_fn, sleep_fn=sleep_fn, lease_s=lease_s, in_run_retries=False,
                      log=log, rand=rand)
        try:
            dest = load_destination(row["destination"])
        except Exception as exc:  # noqa: BLE001
            err = DeliveryError(
                f"destination {row['destination']!r} cannot be loaded: {type(exc).__name__}: {exc}",
                retryable=not isinstance(exc, LookupError),
            )
            outcomes.append(deliver_row(engine, row["id"], failing_sender(err), RetryPolicy(), **common))
            continue
        secrets = secret_values(dest)
        if is_alert_row(row):
            outcomes.append(deliver_row(engine, row["id"], resend_sender(dest, row), dest.retry,
                                        secrets=secrets, **common))
            continue
        key = (row["report_id"], row["period"], row["artifact_sha256"])
        if key not in publications:
            publications[key] = _load(load_publication, key)
        pub = publications[key]
        if isinstance(pub, DeliveryError):
            send = failing_sender(pub)
        else:
            problems = pub.verify()
            send = make_sender(dest, pub, problems)
        outcome = deliver_row(engine, row["id"], send, dest.retry, secrets=secrets, **common)
        outcomes.append(outcome)
    if load_alert_destinations is not None:
        by_report: dict[tuple[str, str], list[DeliveryOutcome]] = {}
        rows_by_id = {r["id"]: r for r in rows}
        for o in outcomes:
            r = rows_by_id[o.row_id]
            if not is_alert_row(r):
                by_report.setdefault((r["report_id"], r["period"]), []).append(o)
        for (report_id, period), items in by_report.items():
            if any(o.status == "dead" for o in items):
                r = rows_by_id[items[0].row_id]
                try:
                    alert_dests = load_alert_destinations(report_id)
                except Exception as exc:  # noqa: BLE001
                    log(f"report {report_id}: alert destinations cannot be loaded: {type(exc).__name__}")
                    continue
                _alert_dead(engine, report_id, period, r["organization_id"], r["run_id"], items,
                            alert_dests, now_fn=now_fn, sleep_fn=sleep_fn, lease_s=lease_s, log=log)
    return outcomes


def _load(load_publication, key: tuple[str, str, str]) -> Publication | DeliveryError:
    report_id, period, sha = key
    try:
        pub = load_publication(report_id, period, sha)
    except (LookupError, FileNotFoundError) as exc:
        return DeliveryError(f"stored artifact for {report_id} {period} not found: {exc}", retryable=False)
    except Exception as exc:  # noqa: BLE001
        return DeliveryError(f"stored artifact for {report_id} {period} cannot be loaded: "
                             f"{type(exc).__name__}: {exc}", retryable=True)
    if pub.artifact_sha256 != sha:
        return DeliveryError(
            f"stored artifact for {report_id} {period} has manifest sha256 {pub.artifact_sha256}, "
            f"not the delivered {sha}; the stored files changed",
            retryable=False,
        )
    return pub
