"""Deliver a publication to its destinations through the ledger (plain Python, no Dagster).

`deliver_publication` is what the publish job's delivery op calls once the files are exported
and stored; `retry_due` is the retry sweep. Both go through the same per-row loop:

    ensure row -> claim (lease) -> send via the channel -> mark sent | mark failed
                    ^                                              |
                    +---- sleep(backoff or Retry-After) <- failed -+  (in-run retries)

The loop itself is `attempt.deliver_row`, shared with the failure alerts. Storage destinations
go first, so when the caller gave no `link_for`, files stored by a storage destination provide
the links that oversize emails and large webhook files need.

Log lines name destinations, channels, recipients, row ids, statuses and errors; every error
and provider reply passes through `redact` with the destination's current secret values, and
no secret is ever formatted into a message in the first place.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Callable, Sequence

from sqlalchemy import Engine

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
    utcnow,
)
from compliance_reports.delivery.errors import DeliveryError, SendResult, secret_values


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
            return send_email(destination, publication, claim.recipient, row_id=claim.id, now=now)
        if destination.type == "webhook":
            return send_webhook(destination, publication, row_id=claim.id, now=now)
        if destination.type == "storage":
            return deliver_to_storage(destination, publication, now=now,
                                      index=FileIndex(engine, DESTINATION, destination.name))
        raise DeliveryError(f"unknown destination type {destination.type!r}", retryable=False)

    return send


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

    Running it again for the same publication sends nothing that was already sent. When
    deliveries end dead and `alert_destinations` are given, one alert covers the failures not
    alerted before (see alerts.notify_failure).
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
        send = make_sender(engine, dest, pub, problems)
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
    lines = [
        f"{o.destination} ({o.channel}) -> {o.recipient}: dead after {o.attempts} attempt(s): {o.error}"
        for o in dead
    ]
    message = f"{len(dead)} delivery(ies) failed permanently:\n" + "\n".join(lines)
    # One alert per distinct failure, sent once (never retried in-run: the sweep retries it and
    # the fallback gets it when its destination is the failing one).
    notify_failure(
        engine, alert_destinations,
        AlertFields(report_id=report_id, period=period, organization_id=organization_id, run_id=run_id),
        message, kind="delivery", failures=[failure_key(o.destination, o.recipient, o.error) for o in dead],
        failing_destinations={o.destination for o in dead}, in_run_retries=False, **kwargs,
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
            outcomes.append(resend_alert_row(engine, row, dest, **common))  # failing: also the fallback
            continue
        key = (row["report_id"], row["period"], row["artifact_sha256"])
        if key not in publications:
            publications[key] = _load(load_publication, key)
        pub = publications[key]
        if isinstance(pub, DeliveryError):
            send = failing_sender(pub)
        else:
            problems = pub.verify()
            send = make_sender(engine, dest, pub, problems)
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
