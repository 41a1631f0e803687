"""Failure alerts: plain notifications through the email and webhook channels, kept in the ledger.

Kinds: "run" (a report or publish run failed and nothing retries it), "gave_up" (the schedule
re-requested a failed period its allowed number of times; the period is left failed) and
"delivery" (deliveries ended dead). No PHI: report id, period, organization id, run id, run
URL and an error summary (redacted of the destination's secrets, truncated).

**Alerts are ledger rows.** `notify_failure` records one row per alert recipient under

    (report_id, period, artifact_sha256 = "failure:<kind>[:<tag>]", destination = <name>,
     recipient = "alert:<address or webhook URL>")

and, when asked to (`send=True`, in a run), sends each once; a failed alert row is retried by
the sweep like any delivery (`resend_alert_row`), from the alert stored in the row
(artifact_location holds it as JSON: no secret, no PHI). The failure sensor only records
(`send=False`) and lets a run send, so a slow mail server never blocks a sensor tick.

**One alert per distinct failure.** A run alert stands for (report, period, kind). A delivery
alert covers failure keys `<destination>|<recipient>|<error kind>`; keys already covered by an
earlier alert of the same report and period are dropped, and the remaining ones become one
alert (one message per incident) whose tag is derived from them. A second, different dead
delivery of the same period is therefore alerted; the same one again is not.

**Fallback.** An alert also goes to the fallback when its destination is the failing one, when
no destination of the report can carry alerts, or when sending it failed: the destination
named by COMPLIANCE_ALERT_FALLBACK (through the ledger), or else - and whenever that one is
failing too - the JSON-lines file `<data folder>/alerts.log` (see alert_fallback). Every alert
is also written to the caller's log (the Dagster event log in runs and sensor ticks).
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

from sqlalchemy import Engine, and_, or_, select

from compliance_reports.db.schema import deliveries
from compliance_reports.delivery import alert_fallback, ledger
from compliance_reports.delivery.attempt import DeliveryOutcome, deliver_row, utcnow
from compliance_reports.delivery.errors import DeliveryError, SendResult, redact, secret_values
from compliance_reports.delivery.lease import lease_for

logger = logging.getLogger("compliance_reports.delivery.alerts")

ALERT_TYPE = "compliance_report.failed"
ALERT_PREFIX = "alert:"
FAILURE_PREFIX = "failure:"
KINDS = ("run", "delivery", "gave_up")
MAX_SUMMARY = 1000
_WHAT = {"run": "run failed", "delivery": "delivery failed", "gave_up": "gave up after its retries"}


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


@dataclass(frozen=True)
class Fallback:
    """Where alerts go when their own channel cannot carry them."""

    destination: str | None  # COMPLIANCE_ALERT_FALLBACK, a destination name
    file: Path  # always the last resort

    @classmethod
    def from_settings(cls) -> "Fallback":
        from compliance_reports.settings import load_settings

        settings = load_settings()
        return cls(settings.alert_fallback, settings.alerts_log)


# ---------------------------------------------------------------- failure identity


def error_kind(message: str | None) -> str:
    """A short, stable name for what went wrong ("http_500", "smtp_550", "connection", ...)."""
    text = message or ""
    patterns = [
        (r"^HTTP (\d{3})", "http_{}"),
        (r"SMTP [^:]*rejected[^:]*: (\d{3})", "smtp_{}"),
        (r"SMTP recipient refused: [^:]*: (\d{3})", "smtp_{}"),
        (r"S3 \w+ failed: (\w+)", "s3_{}"),
    ]
    for pattern, name in patterns:
        match = re.search(pattern, text)
        if match:
            return name.format(match.group(1)).lower()
    lowered = text.lower()
    for needle, name in (
        ("sha256", "artifact_changed"), ("not set or empty", "configuration"),
        ("lease expired", "unknown_outcome"), ("cannot be loaded", "unavailable"),
        ("not found", "not_found"), ("timeout", "timeout"), ("timed out", "timeout"),
        ("connection", "connection"), ("refused", "connection"),
    ):
        if needle in lowered:
            return name
    return "error"


def failure_key(destination: str, recipient: str, error: str | None) -> str:
    return f"{destination}|{recipient}|{error_kind(error)}"


def _identity(kind: str, keys: Sequence[str]) -> str:
    """The ledger's artifact_sha256 of an alert: "failure:run" for a run alert (unchanged since
    alerts were once per report, period and kind), "failure:<kind>:<tag>" for failure keys."""
    if list(keys) == [kind]:
        return FAILURE_PREFIX + kind
    tag = hashlib.sha256("\n".join(sorted(keys)).encode("utf-8")).hexdigest()[:40]
    return f"{FAILURE_PREFIX}{kind}:{tag}"


def _covers(row: Mapping[str, Any]) -> list[str]:
    try:
        stored = json.loads(row.get("artifact_location") or "{}")
    except ValueError:
        stored = {}
    if "covers" in stored:
        return list(stored["covers"])
    return [str(row["artifact_sha256"])[len(FAILURE_PREFIX):]]  # an alert of an older version


def alert_rows(engine: Engine, report_id: str, period: str) -> list[dict[str, Any]]:
    d = deliveries.c
    with engine.connect() as conn:
        rows = conn.execute(
            select(deliveries).where(
                d.report_id == report_id, d.period == period,
                d.artifact_sha256.like(FAILURE_PREFIX + "%"), d.recipient.like(ALERT_PREFIX + "%"),
            )
        ).mappings().all()
    return [dict(r) for r in rows]


# ---------------------------------------------------------------- the message


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
    what = _WHAT.get(kind, "failed")
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
        "This alert is sent once per distinct failure; see the run and "
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


# ---------------------------------------------------------------- recording and sending


def is_alert_row(row: Mapping[str, Any]) -> bool:
    return str(row.get("artifact_sha256", "")).startswith(FAILURE_PREFIX) and str(
        row.get("recipient", "")
    ).startswith(ALERT_PREFIX)


def _stored(row: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(row["artifact_location"] or "{}")


def resend_sender(destination, row: Mapping[str, Any]):
    """A dispatcher Sender that resends the alert stored in an alert row."""
    stored = _stored(row)
    kind = stored.get("kind", "run")
    summary = stored.get("error_summary", "")
    fields = AlertFields.coerce(stored)
    recipient = row["recipient"][len(ALERT_PREFIX):]

    def send(claim: ledger.Claim, now: datetime) -> SendResult:
        return send_alert_to(destination, recipient, fields, summary, msg_id=claim.id, now=now, kind=kind)

    return send


def _record_rows(engine, dest, stored: dict[str, Any], identity: str, now: datetime) -> list[str]:
    text = json.dumps(stored, ensure_ascii=False, sort_keys=True)
    return [
        ledger.ensure_row(
            engine, report_id=stored["report_id"], organization_id=stored.get("organization_id") or "-",
            period=stored["period"], artifact_sha256=identity, destination=dest.name,
            channel=dest.type, recipient=ALERT_PREFIX + recipient,
            max_attempts=dest.retry.max_attempts, artifact_location=text,
            run_id=stored.get("run_id"), now=now, give_up_after_h=dest.retry.give_up_after_h,
            purpose="alert",
        )
        for recipient in alert_recipients(dest)
    ]


def to_fallback(
    engine: Engine, stored: Mapping[str, Any], identity: str, reason: str, *,
    fallback: Fallback, failing: Iterable[str] = (), now: datetime, log: Callable[[str], None],
) -> list[tuple[str, Any]]:
    """Hand one alert to the fallback; returns (row id, destination) of the alert rows recorded
    for the fallback destination, to be sent by the caller or the sweep.

    The fallback destination is used unless it is among the `failing` ones or cannot be loaded
    or carry alerts; the file is used otherwise, and written at most once per alert.
    """
    if fallback.destination and fallback.destination not in set(failing):
        from compliance_reports.config.store import get_destination

        rows: list[tuple[str, Any]] = []
        try:
            dest = get_destination(engine, fallback.destination)
            rows = [(row_id, dest) for row_id in _record_rows(engine, dest, dict(stored), identity, now)]
        except LookupError as exc:
            log(f"alert fallback destination {fallback.destination!r} unusable: {exc}")
        if rows:
            log(f"ALERT {stored['kind']} {stored['report_id']} {stored['period']} also to fallback "
                f"destination {fallback.destination}: {reason}")
            return rows
    entry = {
        "id": hashlib.sha256(f"{stored['report_id']}\0{stored['period']}\0{identity}".encode()).hexdigest()[:32],
        "at": now.isoformat(), "reason": reason, "type": ALERT_TYPE,
        **{k: stored.get(k) for k in ("kind", "report_id", "period", "organization_id", "run_id",
                                      "run_url", "error_summary")},
    }
    if alert_fallback.write_once(fallback.file, entry):
        log(f"ALERT {stored['kind']} {stored['report_id']} {stored['period']} written to "
            f"{fallback.file}: {reason}")
    return []


def _deliver_alert(engine, row_id: str, dest, send, *, lease_s: float | None = None, **kwargs) -> DeliveryOutcome:
    return deliver_row(engine, row_id, send, dest.retry, secrets=secret_values(dest),
                       lease_s=lease_s or lease_for(dest), **kwargs)


def notify_failure(
    engine: Engine,
    destinations: Sequence,
    subject_fields: "AlertFields | Mapping[str, Any]",
    message: str,
    *,
    kind: str = "run",
    failures: Sequence[str] = (),
    failing_destinations: Iterable[str] = (),
    send: bool = True,
    fallback: Fallback | None = None,
    now_fn: Callable[[], datetime] | None = None,
    sleep_fn: Callable[[float], None] = time.sleep,
    lease_s: float | None = None,
    in_run_retries: bool = True,
    log: Callable[[str], None] | None = None,
) -> list[DeliveryOutcome]:
    """Record (and with `send`, send) one alert for the failures not alerted yet.

    `failures` are failure keys (`failure_key`); without them the alert stands for
    (report, period, kind). `failing_destinations` names the destinations whose failure is
    reported: an alert through one of them also goes to the fallback.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
    fields = AlertFields.coerce(subject_fields)
    now_fn = now_fn or utcnow
    log = log or logger.warning
    fallback = fallback or Fallback.from_settings()
    failing = set(failing_destinations)
    keys = sorted(set(failures)) or [kind]
    existing = alert_rows(engine, fields.report_id, fields.period)
    covered = {key for row in existing for key in _covers(row)}
    new = [key for key in keys if key not in covered]
    deliver_kwargs = dict(now_fn=now_fn, sleep_fn=sleep_fn, lease_s=lease_s,
                          in_run_retries=in_run_retries, log=log)
    by_name = {dest.name: dest for dest in destinations}
    if not new:
        log(f"alert {kind} for {fields.report_id} {fields.period} was already raised")
        if not send:
            return []
        return [_deliver_alert(engine, row["id"], by_name[row["destination"]],
                               resend_sender(by_name[row["destination"]], row), **deliver_kwargs)
                for row in existing if set(_covers(row)) & set(keys) and row["destination"] in by_name]

    identity = _identity(kind, new)
    carriers = [dest for dest in destinations if alert_recipients(dest)]
    for dest in destinations:
        if dest not in carriers:
            log(f"alert destination {dest.name} ({dest.type}) cannot carry alerts; skipped")
    # The summary is redacted of every alert destination's secrets before it is stored.
    secrets = [s for dest in destinations for s in secret_values(dest)]
    summary = summarise(message, secrets)
    stored = {**asdict(fields), "kind": kind, "error_summary": summary, "covers": new}
    now = now_fn()
    log(f"ALERT {kind} {fields.report_id} {fields.period}: {summary}")
    rows: list[tuple[str, Any]] = []
    for dest in carriers:
        rows.extend((row_id, dest) for row_id in _record_rows(engine, dest, stored, identity, now))
    through_failing = [dest.name for dest in carriers if dest.name in failing]
    if not carriers or through_failing:
        reason = (f"its destination {', '.join(through_failing)} is the failing one" if through_failing
                  else "the report names no destination that can carry alerts")
        rows.extend(to_fallback(engine, stored, identity, reason, fallback=fallback, failing=failing,
                                now=now, log=log))
    if not send:
        return []
    outcomes = []
    for row_id, dest in rows:
        row = ledger.get_row(engine, row_id)
        outcomes.append(resend_alert_row(engine, row, dest, fallback=fallback, **deliver_kwargs))
    return outcomes


def resend_alert_row(
    engine: Engine, row: Mapping[str, Any], destination, *, fallback: Fallback | None = None, **kwargs
) -> DeliveryOutcome:
    """One send of an alert row (retries as `kwargs` say); a failure also goes to the fallback."""
    outcome = _deliver_alert(engine, row["id"], destination, resend_sender(destination, row), **kwargs)
    if outcome.status in ("failed", "dead"):
        log = kwargs.get("log") or logger.warning
        fallback = fallback or Fallback.from_settings()
        now = (kwargs.get("now_fn") or utcnow)()
        stored = {**_stored(row), "report_id": row["report_id"], "period": row["period"]}
        stored.setdefault("kind", "run")
        reason = f"sending it to {destination.name} failed: {outcome.error}"
        # A failing fallback destination leaves only the file.
        for row_id, dest in to_fallback(engine, stored, row["artifact_sha256"], reason,
                                        fallback=fallback, failing=[destination.name], now=now, log=log):
            # A failure there names the fallback destination as failing: only the file is left.
            resend_alert_row(engine, ledger.get_row(engine, row_id), dest, fallback=fallback,
                             **{**kwargs, "in_run_retries": False})
    return outcome


def due_alert_rows(engine: Engine, now: datetime, limit: int = 100) -> list[dict[str, Any]]:
    """Alert rows waiting for a send: pending (any age: nobody else sends them) or failed and due."""
    d = deliveries.c
    due = or_(d.next_attempt_at.is_(None), d.next_attempt_at <= now)
    query = (
        select(deliveries)
        .where(d.artifact_sha256.like(FAILURE_PREFIX + "%"), d.recipient.like(ALERT_PREFIX + "%"),
               or_(d.status == "pending", and_(d.status == "failed", due)))
        .order_by(d.created_at, d.id)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def send_due_alerts(
    engine: Engine,
    load_destination: Callable[[str], Any],
    *,
    now_fn: Callable[[], datetime] = utcnow,
    log: Callable[[str], None] | None = None,
    fallback: Fallback | None = None,
    limit: int = 100,
) -> list[DeliveryOutcome]:
    """Send every recorded alert that is due, one attempt each (failures: sweep and fallback)."""
    log = log or logger.warning
    outcomes = []
    for row in due_alert_rows(engine, now_fn(), limit):
        try:
            dest = load_destination(row["destination"])
        except LookupError as exc:
            log(f"alert {row['id']}: destination {row['destination']!r} cannot be loaded: {exc}")
            continue
        outcomes.append(resend_alert_row(engine, row, dest, fallback=fallback, now_fn=now_fn,
                                         in_run_retries=False, log=log))
    return outcomes
