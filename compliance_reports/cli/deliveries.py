"""`compliance-reports deliveries list|retry|redeliver`: the delivery ledger from the command line.

Registered in `cli/main.py`. Exit status 0 on success, 1 when the
requested change cannot be made (row already sent or being sent, a redelivery that did not go
through), 2 on bad input.

`retry` only reschedules: it makes failed or unknown (or, with --id or --include-dead, dead)
rows due now with their attempt count kept, so a row past its give-up time gets exactly one more
attempt, with the same id (Idempotency-Key, Message-ID). The resend itself is done by the retry
sweep on its next tick, from the stored files; nothing is regenerated.

`redeliver` sends a period's latest issue again ON PURPOSE: new ledger rows (purpose
redelivery) with new ids, sent now from the stored files (what fails is left to the sweep).
"""

from __future__ import annotations

import json
import sys
from datetime import date, datetime, timezone
from typing import Any

import click

from compliance_reports.cli.output import DELIVERY_ID, REPORT_ID
from compliance_reports.delivery import ledger

LIST_COLUMNS = [
    "id", "report_id", "period", "destination", "channel", "recipient", "purpose", "status",
    "attempts", "next_attempt_at", "give_up_at", "sent_at", "last_error",
]


def _engine():
    from compliance_reports.db.engine import make_engine
    from compliance_reports.settings import load_settings

    return make_engine(load_settings().compliance_db_url)


def _json_default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def _cell(column: str, row: dict[str, Any]) -> str:
    value = row.get(column)
    if column == "status" and row.get("possible_duplicate"):
        return f"{value} (possible duplicate)"
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    text = " ".join(str(value).split())
    if column == "last_error" and len(text) > 60:
        text = text[:57] + "..."
    return text


def _table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        click.echo("(none)")
        return
    cells = [[_cell(c, r) for c in LIST_COLUMNS] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(LIST_COLUMNS)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(LIST_COLUMNS, widths)).rstrip())
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


@click.group()
def deliveries() -> None:
    """The delivery ledger: every delivery of every report, sent exactly once."""


@deliveries.command("list")
@click.option("--status", type=click.Choice(ledger.STATUSES), default=None, help="Only rows in this status.")
@click.option("--report", "report_id", default=None, type=REPORT_ID, help="Only this report id.")
@click.option("--period", default=None, help="Only this period key.")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]), default=None,
              help="Only rows created at or after this UTC date or instant (YYYY-MM-DD[THH:MM:SS]).")
@click.option("--limit", type=click.IntRange(1, 1_000_000), default=None,
              help="Only the newest N matching rows (still listed oldest first).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def deliveries_list(status: str | None, report_id: str | None, period: str | None, since: datetime | None,
                    limit: int | None, as_json: bool) -> None:
    """List deliveries, oldest first."""
    rows = ledger.list_rows(_engine(), status, report_id, period=period,
                           since=since.replace(tzinfo=timezone.utc) if since else None, limit=limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=_json_default, ensure_ascii=False))
    else:
        _table(rows)


@deliveries.command("retry")
@click.option("--id", "row_id", default=None, type=DELIVERY_ID, help="The delivery id (from `deliveries list`).")
@click.option("--include-dead", is_flag=True, help="Without --id: dead rows too, not only failed ones.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def deliveries_retry(row_id: str | None, include_dead: bool, as_json: bool) -> None:
    """Make failed, unknown (or dead) deliveries due now; the retry sweep resends them.

    Attempts are kept: a row past its give-up time gets one more attempt, with the same id. A
    sent row is never sent again (see `redeliver`).
    """
    engine = _engine()
    now = datetime.now(timezone.utc)
    if row_id:
        try:
            results = [ledger.reschedule(engine, row_id, now)]
        except LookupError as exc:
            click.echo(str(exc).strip("'\""), err=True)
            sys.exit(2)
        except ledger.RescheduleError as exc:
            click.echo(str(exc), err=True)
            sys.exit(1)
    else:
        statuses = ["failed", "unknown", "dead"] if include_dead else ["failed", "unknown"]
        results = []
        for status in statuses:
            for row in ledger.list_rows(engine, status=status):
                try:
                    results.append(ledger.reschedule(engine, row["id"], now))
                except (LookupError, ledger.RescheduleError):
                    continue  # changed meanwhile
    if as_json:
        click.echo(json.dumps(results, indent=2))
        return
    if not results:
        click.echo("nothing to retry")
        return
    for r in results:
        duplicate = " (possible duplicate: resent with the same id)" if r["possible_duplicate"] else ""
        click.echo(
            f"{r['id']}: {r['previous_status']} -> {r['status']}, due now "
            f"(attempts so far {r['attempts']}){duplicate}; the retry sweep resends it from the stored files"
        )


@deliveries.command("redeliver")
@click.option("--report", "report_id", required=True, help="The report id.")
@click.option("--period", required=True, help="The period key.")
@click.option("--destination", "destination_names", multiple=True,
              help="Only this destination (repeatable); default: the report's destinations.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def deliveries_redeliver(report_id: str, period: str, destination_names: tuple[str, ...], as_json: bool) -> None:
    """Send a period's latest issue again, on purpose, from the stored files.

    Every recipient gets a new copy with a new id (receivers do not drop it as a duplicate);
    the ledger marks the new rows as deliberate redeliveries.
    """
    import tempfile
    from pathlib import Path

    from compliance_reports.artifacts.store import open_store
    from compliance_reports.config import store as config_store
    from compliance_reports.delivery.dispatcher import redeliver
    from compliance_reports.exporters.publishing import stored_publication_loader

    engine = _engine()
    try:
        report = config_store.get_report(engine, report_id)
        names = destination_names or tuple(report.destinations)
        destinations = [config_store.get_destination(engine, name) for name in names]
    except config_store.NotFoundError as exc:
        click.echo(f"--report/--destination: {str(exc).strip(chr(39))}", err=True)
        sys.exit(2)
    if not destinations:
        click.echo(f"--destination: report {report_id} has no destinations; name one", err=True)
        sys.exit(2)
    with tempfile.TemporaryDirectory(prefix="redeliver-") as scratch:
        try:
            outcomes = redeliver(engine, report.id, period, destinations,
                                 stored_publication_loader(engine, open_store(engine), Path(scratch)),
                                 log=lambda line: None if as_json else click.echo(line, err=True))
        except LookupError as exc:
            click.echo(f"--period: {str(exc).strip(chr(39))}", err=True)
            sys.exit(2)
    emit_outcomes(outcomes, as_json)
    if not all(o.delivered for o in outcomes):
        sys.exit(1)


def emit_outcomes(outcomes, as_json: bool) -> None:
    rows = [
        {"id": o.row_id, "destination": o.destination, "channel": o.channel, "recipient": o.recipient,
         "status": o.status, "attempts": o.attempts, "possible_duplicate": o.possible_duplicate,
         "error": o.error}
        for o in outcomes
    ]
    if as_json:
        click.echo(json.dumps(rows, indent=2, default=_json_default, ensure_ascii=False))
        return
    for r in rows:
        error = f": {r['error']}" if r["error"] and r["status"] != "sent" else ""
        click.echo(f"{r['destination']} -> {r['recipient']}: {r['status']}{error}")
