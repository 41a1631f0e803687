"""Deliver a publication to its destinations through the ledger (plain Python, no Dagster).

`deliver_publication` is what the publish job's delivery op calls once the files are exported
and stored; `retry_due` is the retry sweep; `redeliver` sends a period's latest issue again on
purpose. All go through the same per-row loop:

    all rows first (one transaction) -> claim (lease) -> send via the channel -> mark sent | failed
                                          ^                                          |
                                          +-- sleep(backoff or Retry-After) <- failed (in-run budget)

The loop itself is `attempt.deliver_row`, shared with the failure alerts. Storage destinations
go first, so when the caller gave no `link_for`, files stored by a storage destination provide
the links that oversize emails and large webhook files need. An error around one row never
stops the others: each row's outcome is recorded, or left visible to the retry sweep.

Log lines name destinations, channels, recipients, row ids, statuses and errors; every error
and provider reply passes through `redact` with the destination's current secret values, and
no secret is ever formatted into a message in the first place.
"""

from __future__ import annotations

import time
from dataclasses import replace
from datetime import datetime
from typing import Callable, Sequence

from sqlalchemy import Engine

from compliance_reports.artifacts.manifest import StoredSetChanged
from compliance_reports.artifacts.publication import Publication
from compliance_reports.config.models import RetryPolicy
from compliance_reports.delivery import ledger
from compliance_reports.delivery.alerts import (
    AlertFields,
    failure_key,
    is_alert_row,
    notify_failure,
    resend_alert_row,
)
from compliance_reports.delivery.attempt import (
    DeliveryOutcome,
    Log,
    Sender,
    deliver_row,
    failing_sender,
    logger,
)
from compliance_reports.delivery.errors import DeliveryError, SendResult, redact, secret_values
from compliance_reports.delivery.lease import lease_for
from compliance_reports.delivery.ledger_db import retry_transient


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


def make_sender(engine: Engine, destination, publication: Publication, problems: Sequence[str] = ()) -> Sender:
    """The channel call for one row of `destination` (storage records its files in `engine`'s
    file index, so retention can later remove exactly those)."""
    from compliance_reports.artifacts.file_index import DESTINATION, FileIndex
    from compliance_reports.delivery.email_channel import send_email
    from compliance_reports.delivery.storage_channel import deliver_to_storage
    from compliance_reports.delivery.webhook_channel import send_webhook

    def send(claim: ledger.Claim, now: datetime) -> SendResult:
        if problems:
            raise DeliveryError("; ".join(problems), retryable=False)
        if destination.type == "email":
            return send_email(destination, publication, claim.recipient, row_id=claim.id, now=now,
                              on_transmit=claim.on_transmit)
        if destination.type == "webhook":
            return send_webhook(destination, publication, row_id=claim.id, now=now,
                                on_transmit=claim.on_transmit)
        if destination.type == "storage":
            return deliver_to_storage(destination, publication, now=now,
                                      index=FileIndex(engine, DESTINATION, destination.name))
        raise DeliveryError(f"unknown destination type {destination.type!r}", retryable=False)

    return send


def _deliver_rows(engine, row_ids, recipients, dest, send, *, lease_s, secrets, **common) -> list[DeliveryOutcome]:
    """deliver_row for each row; an unexpected error ends that row's attempt, never the loop."""
    outcomes = []
    for row_id, recipient in zip(row_ids, recipients):
        try:
            outcome = deliver_row(engine, row_id, send, dest.retry, lease_s=lease_s, secrets=secrets, **common)
            if not outcome.destination:  # the ledger was unavailable before the row could be read
                outcome = replace(outcome, destination=dest.name, channel=dest.type, recipient=recipient)
            outcomes.append(outcome)
        except Exception as exc:  # noqa: BLE001 - one row's problem must not stop the others
            message = redact(f"{type(exc).__name__}: {exc}", secrets)
            common["log"](f"delivery {row_id} ({dest.name} -> {recipient}): {message}; left for the sweep")
            outcomes.append(DeliveryOutcome(row_id, dest.name, dest.type, recipient, "unrecorded", 0,
                                            error=message))
    return outcomes


def deliver_publication(
    engine: Engine,
    publication: Publication,
    destinations: Sequence,
    *,
    now_fn: Callable[[], datetime] | None = None,
    sleep_fn: Callable[[float], None] = time.sleep,
    lease_s: float | None = None,
    in_run_retries: bool = True,
    log: Log | None = None,
    alert_destinations: Sequence = (),
    max_in_run_wait_s: float | None = None,
    rand: Callable[[], float] | None = None,
    verify_files: bool = True,
) -> list[DeliveryOutcome]:
    """Deliver every stored file of `publication` to every destination, exactly once.

    Every (destination, recipient) row is written first, in one transaction (retried while the
    database is unavailable; ledger_db.LedgerUnavailable if it stays so: nothing was sent).
    Running it again for the same content sends nothing that was already sent. `lease_s`
    overrides the lease derived from each destination (lease.lease_for); `now_fn` overrides the
    database's clock (tests). When deliveries are given up and `alert_destinations` are given,
    one alert covers the failures not alerted before (see alerts.notify_failure).
    """
    log = log or logger.info
    problems = publication.verify() if verify_files else []
    if problems:
        log(f"report {publication.report_id} period {publication.period}: stored files do not "
            f"match the manifest: {'; '.join(problems)}")
    ordered = sorted(destinations, key=lambda dest: 0 if dest.type == "storage" else 1)
    plan = [(dest, recipients_for(dest)) for dest in ordered]
    rows = retry_transient(
        lambda: ledger.ensure_publication_rows(engine, publication, plan, now=now_fn() if now_fn else None),
        f"writing the ledger rows of {publication.report_id} {publication.period}",
        sleep_fn=sleep_fn, log=log,
    )
    pub = publication
    outcomes: list[DeliveryOutcome] = []
    common = dict(now_fn=now_fn, sleep_fn=sleep_fn, in_run_retries=in_run_retries,
                  max_in_run_wait_s=max_in_run_wait_s, log=log, rand=rand)
    for dest, recipients in plan:
        dest_outcomes = _deliver_rows(
            engine, rows[dest.name], recipients, dest, make_sender(engine, dest, pub, problems),
            lease_s=lease_s or lease_for(dest, pub), secrets=secret_values(dest), **common,
        )
        outcomes.extend(dest_outcomes)
        if dest.type == "storage" and pub.link_for is None and all(o.delivered for o in dest_outcomes):
            from compliance_reports.delivery.storage_channel import link_factory

            pub = pub.with_links(link_factory(dest, pub))
    _alert_given_up(engine, publication.report_id, publication.period, publication.organization_id,
                    publication.run_id, outcomes, alert_destinations, now_fn=now_fn, sleep_fn=sleep_fn,
                    log=log)
    return outcomes


def _alert_given_up(engine, report_id, period, organization_id, run_id, outcomes, alert_destinations,
                    **kwargs) -> None:
    gone = [o for o in outcomes if o.given_up]
    if not gone or not alert_destinations:
        return
    lines = [
        f"{o.destination} ({o.channel}) -> {o.recipient}: {o.status} after {o.attempts} attempt(s): {o.error}"
        for o in gone
    ]
    message = f"{len(gone)} delivery(ies) failed permanently:\n" + "\n".join(lines)
    # One alert per distinct failure, sent once (never retried in-run: the sweep retries it and
    # the fallback gets it when its destination is the failing one).
    notify_failure(
        engine, alert_destinations,
        AlertFields(report_id=report_id, period=period, organization_id=organization_id, run_id=run_id),
        message, kind="delivery", failures=[failure_key(o.destination, o.recipient, o.error) for o in gone],
        failing_destinations={o.destination for o in gone}, in_run_retries=False, **kwargs,
    )


def retry_due(
    engine: Engine,
    load_publication: Callable[[str, str, str], Publication],
    load_destination: Callable[[str], object],
    now: datetime | None = None,
    *,
    now_fn: Callable[[], datetime] | None = None,
    sleep_fn: Callable[[float], None] = time.sleep,
    lease_s: float | None = None,
    limit: int = 100,
    pending_grace_s: float = 60.0,
    log: Log | None = None,
    load_alert_destinations: Callable[[str], Sequence] | None = None,
    rand: Callable[[], float] | None = None,
) -> list[DeliveryOutcome]:
    """The retry sweep: one attempt for every due row, from the STORED files.

    `load_publication(report_id, period, artifact_sha256)` returns the stored publication
    (never regenerated); its manifest sha256 must equal the row's, otherwise the row is dead
    (a mismatch is never retried). A missing artifact or destination (LookupError /
    FileNotFoundError) makes the row dead; other loading errors count as a retryable failed
    attempt. Failure-alert rows (see alerts) are resent from the alert stored in the row.
    Without `now`/`now_fn` the database's clock decides what is due.
    """
    log = log or logger.info
    if now_fn is None and now is not None:
        now_fn = lambda: now  # noqa: E731
    rows = retry_transient(
        lambda: ledger.due_rows(engine, now_fn() if now_fn else None, limit, pending_grace_s=pending_grace_s),
        "reading the due deliveries", sleep_fn=sleep_fn, log=log,
    )
    publications: dict[tuple[str, str, str], Publication | DeliveryError] = {}
    outcomes: list[DeliveryOutcome] = []
    common = dict(now_fn=now_fn, sleep_fn=sleep_fn, in_run_retries=False, log=log, rand=rand)
    for row in rows:
        try:
            dest = load_destination(row["destination"])
        except Exception as exc:  # noqa: BLE001
            err = DeliveryError(
                f"destination {row['destination']!r} cannot be loaded: {type(exc).__name__}: {exc}",
                retryable=not isinstance(exc, LookupError),
            )
            outcomes += _deliver_rows(engine, [row["id"]], [row["recipient"]], _Unknown(row),
                                      failing_sender(err), lease_s=lease_s, secrets=(), **common)
            continue
        if is_alert_row(row):
            try:
                outcomes.append(resend_alert_row(engine, row, dest, **common))  # failing: also the fallback
            except Exception as exc:  # noqa: BLE001 - one row's problem must not stop the others
                log(f"alert {row['id']}: {redact(f'{type(exc).__name__}: {exc}', secret_values(dest))}; "
                    "left for the sweep")
            continue
        key = (row["report_id"], row["period"], row["artifact_sha256"])
        if key not in publications:
            publications[key] = _load(load_publication, key)
        pub = publications[key]
        if isinstance(pub, DeliveryError):
            send, pub = failing_sender(pub), None
        else:
            send = make_sender(engine, dest, pub, pub.verify())
        outcomes += _deliver_rows(engine, [row["id"]], [row["recipient"]], dest, send,
                                  lease_s=lease_s or lease_for(dest, pub), secrets=secret_values(dest),
                                  **common)
    if load_alert_destinations is not None:
        _alert_swept(engine, rows, outcomes, load_alert_destinations, now_fn=now_fn, sleep_fn=sleep_fn, log=log)
    return outcomes


class _Unknown:
    """Stands in for a destination that cannot be loaded: the row's own names, default retries."""

    def __init__(self, row) -> None:
        self.name, self.type, self.retry = row["destination"], row["channel"], RetryPolicy()


def _alert_swept(engine, rows, outcomes, load_alert_destinations, **kwargs) -> None:
    by_report: dict[tuple[str, str], list[DeliveryOutcome]] = {}
    rows_by_id = {r["id"]: r for r in rows}
    for o in outcomes:
        r = rows_by_id[o.row_id]
        if not is_alert_row(r):
            by_report.setdefault((r["report_id"], r["period"]), []).append(o)
    for (report_id, period), items in by_report.items():
        if any(o.given_up for o in items):
            r = rows_by_id[items[0].row_id]
            try:
                alert_dests = load_alert_destinations(report_id)
            except Exception as exc:  # noqa: BLE001
                kwargs["log"](f"report {report_id}: alert destinations cannot be loaded: {type(exc).__name__}")
                continue
            _alert_given_up(engine, report_id, period, r["organization_id"], r["run_id"], items,
                            alert_dests, **kwargs)


def redeliver(
    engine: Engine,
    report_id: str,
    period: str,
    destinations: Sequence,
    load_publication: Callable[[str, str, str], Publication],
    *,
    now_fn: Callable[[], datetime] | None = None,
    sleep_fn: Callable[[float], None] = time.sleep,
    log: Log | None = None,
) -> list[DeliveryOutcome]:
    """Send the period's latest issue again, on purpose, to every recipient of `destinations`.

    New ledger rows (purpose redelivery, next sequence, so new ids that receivers do not drop
    as duplicates), delivered now from the stored files; what does not go through now is left
    to the retry sweep. LookupError when the period was never published.
    """
    log = log or logger.info
    issue = ledger.latest_issue(engine, report_id, period, include_dead=True)
    if issue is None:
        raise LookupError(f"report {report_id} period {period} has no delivery on record; publish it first")
    pub = _load(load_publication, (report_id, period, issue["artifact_sha256"]))
    if isinstance(pub, DeliveryError):
        raise LookupError(str(pub))
    problems = pub.verify()
    if problems:
        raise LookupError("stored files do not match their manifest: " + "; ".join(problems))
    ordered = sorted(destinations, key=lambda dest: 0 if dest.type == "storage" else 1)
    plan = [(dest, recipients_for(dest)) for dest in ordered]
    rows = ledger.add_redelivery_rows(engine, issue, plan, now=now_fn() if now_fn else None)
    outcomes: list[DeliveryOutcome] = []
    for dest, recipients in plan:
        outcomes += _deliver_rows(engine, rows[dest.name], recipients, dest, make_sender(engine, dest, pub),
                                  lease_s=lease_for(dest, pub), secrets=secret_values(dest),
                                  now_fn=now_fn, sleep_fn=sleep_fn, in_run_retries=True, log=log)
    return outcomes


def _load(load_publication, key: tuple[str, str, str]) -> Publication | DeliveryError:
    report_id, period, sha = key
    try:
        pub = load_publication(report_id, period, sha)
    except (LookupError, FileNotFoundError) as exc:
        return DeliveryError(f"stored artifact for {report_id} {period} not found: {exc}", retryable=False)
    except StoredSetChanged as exc:
        return DeliveryError(f"stored artifact for {report_id} {period}: {exc} (not retried)", retryable=False)
    except Exception as exc:  # noqa: BLE001
        return DeliveryError(f"stored artifact for {report_id} {period} cannot be loaded: "
                             f"{type(exc).__name__}: {exc}", retryable=True)
    if pub.artifact_sha256 != sha:
        return DeliveryError(
            f"stored artifact for {report_id} {period} has manifest sha256 {pub.artifact_sha256}, "
            f"not the delivered {sha}; the stored files changed (not retried)",
            retryable=False,
        )
    return pub
