"""`compliance-reports run` and `history`: one report period now, and a report's Dagster runs."""

from __future__ import annotations

import sys
from datetime import datetime

import click

from compliance_reports.cli.output import (
    REPORT_ID,
    Context,
    emit_json,
    emit_table,
    ensure_dagster_home,
    fail,
    get_report,
    pass_ctx,
    progress_status,
)


PUBLISHING_NOTE = ("export and delivery wait for the daemon: its publish sensor launches "
                   "publish_report_job for this materialization (`make dev` or dagster-daemon)")


@click.command("run")
@click.argument("report_id", type=REPORT_ID)
@click.option("--period", default=None, help="Period key (its local start date); default: the latest ended.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@pass_ctx
def run_report(ctx: Context, report_id: str, period: str | None, as_json: bool) -> None:
    """Materialize one report period now through the Dagster instance at $DAGSTER_HOME."""
    from datetime import timezone as tz

    from compliance_reports.orchestration.manual_run import run_report_now
    from compliance_reports.scheduling import PeriodRefused, requested_period

    report = get_report(ctx, report_id)
    try:
        period = requested_period(report, period, datetime.now(tz.utc))
    except PeriodRefused as exc:
        fail(f"--period: {exc}")
    ensure_dagster_home(ctx.settings)
    # Progress goes to stderr, and only for people: --json keeps stdout to the JSON document.
    with progress_status(f"running {report_id} {period} ({report.frequency}_reports_job)", quiet=as_json):
        outcome = run_report_now(report, period, app_db_url=ctx.settings.compliance_db_url,
                                 audit_db_url=ctx.settings.audit_db_url, log_level="WARNING")
    outcome["publishing"] = PUBLISHING_NOTE if outcome["status"] == "SUCCESS" else None
    if as_json:
        emit_json(outcome)
    else:
        click.echo(f"{report_id} {period}: {outcome['job']} run {outcome['run_id']} {outcome['status']}")
        if outcome["status"] == "SUCCESS":
            click.echo(f"  integrity: {outcome['integrity_verdict']}; events: {outcome['event_count']:,}")
            for location in outcome["files"]:
                click.echo(f"  stored: {location}")
            click.echo(f"  next: {PUBLISHING_NOTE}")
        for line in outcome.get("messages", []):
            click.echo(f"  {line}")
    if outcome["status"] != "SUCCESS":
        sys.exit(1)


@click.command("history")
@click.argument("report_id", type=REPORT_ID)
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000),
              help="At most this many runs, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_ctx
def history(ctx: Context, report_id: str, limit: int, as_json: bool) -> None:
    """Dagster runs of a report (report and publish runs), newest first."""
    from dagster import DagsterInstance

    from compliance_reports.orchestration.dagster_runs import report_history

    ensure_dagster_home(ctx.settings)
    with DagsterInstance.get() as instance:
        rows = report_history(instance, report_id, limit)
    if as_json:
        emit_json(rows)
    else:
        for row in rows:
            row["error"] = _short(row["error"])
        emit_table(rows, ["run_id", "job", "status", "period", "trigger", "start", "duration_s", "error"])


def _short(text: str | None, width: int = 80) -> str | None:
    return text if text is None or len(text) <= width else text[: width - 3] + "..."
