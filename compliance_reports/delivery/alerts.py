"""Failure alerts: plain notifications through the same email and webhook channels.

Used by the run-failure sensor (kind "run") and for dead deliveries (kind "delivery").
No PHI: report id, period, organization id, run id, run URL and an error summary (the caller
passes a summary without event data; it is truncated and redacted of the destination's
secrets before it leaves).

Dedup, "once per report and period": `notify_failure` records each alert in the delivery
ledger under the key

    (report_id, period, artifact_sha256 = "failure:<kind>", destination = <name>,
     recipient = "alert:<address or webhook URL>")

so a second failure of the same report and period (another run, a retried run, the sweep)
finds the row: `sent` is never sent again, `failed` is retried by the sweep only, which
resends the alert stored in the row (artifact_location holds the alert as JSON: it contains no
secret and no PHI). Its id is the webhook-id / Message-ID, as for reports. Storage
destinations are not notification channels and are skipped. `send_failure_alert` is the raw,
unrecorded send (for callers that do their own dedup, or a test message).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from typing import Any, Callable, Mapping, Sequence

from sqlalchemy import Engine

from compliance_reports.delivery import ledger
from compliance_reports.delivery.attempt import deliver_row
from compliance_reports.delivery.errors import DeliveryError, SendResult, redact, secret_values
from compliance_reports.delivery.lease import lease_for

logger = logging.getLogger("compliance_reports.delivery.alerts")

ALERT_TYPE = "compliance_report.failed"
ALERT_PREFIX = "alert:"
FAILURE_PREFIX = "failure:"
KINDS = ("run", "delivery")
MAX_SUMMARY = 1000


@dataclass(frozen=True)
class AlertFields:
    report_id: str
    period: str
    organization_id: str = ""
    run_id: str | None = None
    run_url: str | None = None
    report_name: str | None = None

    @classmethod
    def coerce(cls, value: "AlertFields | Mapping[str, Any]") -> "AlertFields":
        if isinstance(value, AlertFields):
            return value
        return cls(**{k: value.get(k) for k in cls.__dataclass_fields__ if value.get(k) is not None})


@dataclass(frozen=True)
class AlertResult:
    destination: str
    recipient: str
    ok: bool
    detail: str


def alert_recipients(destination) -> list[str]:
    """Where an alert goes: each email address, or the webhook URL; storage: nowhere."""
    if destination.type == "email":
        from compliance_reports.delivery.email_channel import email_recipients

        return email_recipients(destination)
    if destination.type == "webhook":
        from compliance_reports.delivery.webhook_channel import webhook_recipient

        return [webhook_recipient(destination)]
    return []


def alert_id(fields: AlertFields, kind: str, destination_name: str, recipient: str) -> str:
    return ledger.delivery_id(
        fields.report_id, fields.period, FAILURE_PREFIX + kind, destination_name, ALERT_PREFIX + recipient
    )


def summarise(message: str, secrets: Sequence[str] = ()) -> str:
    text = redact(message or "", secrets) or ""
    return text if len(text) <= MAX_SUMMARY else text[: MAX_SUMMARY - 3] + "..."


def alert_text(fields: AlertFields, summary: str, kind: str = "run") -> tuple[str, str]:
    what = "run failed" if kind == "run" else "delivery failed"
    subject = f"Compliance report {fields.report_id} {what} for period {fields.period}"
    lines = [
        f"Compliance report {fields.report_id}: {what} for period {fields.period}.",
        "",
        f"Report id: {fields.report_id}",
        f"Organization: {fields.organization_id or '-'}",
        f"Period: {fields.period}",
        f"Run id: {fields.run_id or '-'}",
        f"Run: {fields.run_url or '-'}",
        "",
        "Error summary:",
        summary,
        "",
        "This alert is sent once per report and period; see the run and "
        "`compliance-reports deliveries list` for details.",
    ]
    return subject, "\n".join(lines) + "\n"


def alert_payload(fields: AlertFields, summary: str, msg_id: str, kind: str = "run") -> dict[str, Any]:
    return {
        "id": msg_id,
        "type": ALERT_TYPE,
        "kind": kind,
        "report_id": fields.report_id,
        "organization_id": fields.organization_id or None,
        "period": fields.period,
        "run_id": fields.run_id,
        "run_url": fields.run_url,
        "error_summary": summary,
    }


def send_alert_to(
    destination, recipient: str, fields: AlertFields, summary: str, *, msg_id: str, now: datetime,
    kind: str = "run",
) -> SendResult:
    """One alert to one recipient of an email or webhook destination."""
    if destination.type == "email":
        from compliance_reports.delivery.email_channel import send_plain_email

        subject, text = alert_text(fields, summary, kind)
        return send_plain_email(destination, recipient, subject=subject, text=text, message_id=msg_id, now=now)
    if destination.type == "webhook":
        from compliance_reports.delivery.webhook_channel import post_json

        return post_json(destination, msg_id, alert_payload(fields, summary, msg_id, kind), now=now)
    raise DeliveryError(f"destination {destination.name} ({destination.type}) cannot carry alerts",
                        retryable=False)


def send_failure_alert(
    destinations: Sequence,
    subject_fields: "AlertFields | Mapping[str, Any]",
    message: str,
    *,
    kind: str = "run",
    now: datetime | None = None,
) -> list[AlertResult]:
    """Send the alert now to every recipient, without the ledger (no dedup, no retry)."""
    fields = AlertFields.coerce(subject_fields)
    now = now or datetime.now(timezone.utc)
    results = []
    for dest in destinations:
        secrets = secret_values(dest)
        summary = summarise(message, secrets)
        for recipient in alert_recipients(dest):
            msg_id = alert_id(fields, kind, dest.name, recipient)
            try:
                result = send_alert_to(dest, recipient, fields, summary, msg_id=msg_id, now=now, kind=kind)
                results.append(AlertResult(dest.name, recipient, True, redact(result.provider_response, secrets)))
            except DeliveryError as exc:
                results.append(AlertResult(dest.name, recipient, False, redact(str(exc), secrets)))
    return results


def is_alert_row(row: Mapping[str, Any]) -> bool:
    return str(row.get("artifact_sha256", "")).startswith(FAILURE_PREFIX) and str(
        row.get("recipient", "")
    ).startswith(ALERT_PREFIX)


def resend_sender(destination, row: Mapping[str, Any]):
    """A dispatcher Sender that resends the alert stored in an alert row."""
    stored = json.loads(row["artifact_location"] or "{}")
    kind = stored.pop("kind", "run")
    summary = stored.pop("error_summary", "")
    fields = AlertFields.coerce(stored)
    recipient = row["recipient"][len(ALERT_PREFIX):]

    def send(claim: ledger.Claim, now: datetime) -> SendResult:
        return send_alert_to(destination, recipient, fields, summary, msg_id=claim.id, now=now, kind=kind)

    return send


def notify_failure(
    engine: Engine,
    destinations: Sequence,
    subject_fields: "AlertFields | Mapping[str, Any]",
    message: str,
    *,
    kind: str = "run",
    now_fn: Callable[[], datetime] | None = None,
    sleep_fn: Callable[[float], None] = time.sleep,
    lease_s: float | None = None,
    in_run_retries: bool = True,
    log: Callable[[str], None] | None = None,
):
    """Send the failure alert once per (report, period, kind) and recipient, recorded in the ledger."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    fields = AlertFields.coerce(subject_fields)
    log = log or logger.info
    outcomes = []
    for dest in destinations:
        recipients = alert_recipients(dest)
        if not recipients:
            log(f"alert destination {dest.name} ({dest.type}) cannot carry alerts; skipped")
            continue
        secrets = secret_values(dest)
        summary = summarise(message, secrets)
        stored = json.dumps({**asdict(fields), "kind": kind, "error_summary": summary}, ensure_ascii=False)
        for recipient in recipients:
            row_id = ledger.ensure_row(
                engine, report_id=fields.report_id, organization_id=fields.organization_id or "-",
                period=fields.period, artifact_sha256=FAILURE_PREFIX + kind, destination=dest.name,
                channel=dest.type, recipient=ALERT_PREFIX + recipient,
                max_attempts=dest.retry.max_attempts, artifact_location=stored,
                run_id=fields.run_id, now=now_fn() if now_fn else None,
                give_up_after_h=dest.retry.give_up_after_h, purpose="alert",
            )

            def send(claim, now, dest=dest, recipient=recipient, summary=summary):
                return send_alert_to(dest, recipient, fields, summary, msg_id=claim.id, now=now, kind=kind)

            outcomes.append(
                deliver_row(engine, row_id, send, dest.retry, now_fn=now_fn, sleep_fn=sleep_fn,
                            lease_s=lease_s or lease_for(dest), in_run_retries=in_run_retries, log=log,
                            secrets=secrets)
            )
    return outcomes
