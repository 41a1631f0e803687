"""`compliance-reports backfill`: a Dagster backfill of one report over a range of periods."""

from __future__ import annotations

import sys
import time
from datetime import datetime, timezone

import click

from compliance_reports.cli.output import (
    REPORT_ID,
    Context,
    emit_json,
    ensure_dagster_home,
    fail,
    get_report,
    json_option,
    pass_ctx,
)


@click.command("backfill")
@click.argument("report_id", type=REPORT_ID)
@click.option("--from", "first", required=True, help="First period key (its local start date, YYYY-MM-DD).")
@click.option("--to", "last", required=True, help="Last period key, included (YYYY-MM-DD).")
@click.option("--location", default="compliance_reports", show_default=True,
              help="Name of the code location in the daemon's workspace.")
@click.option("--wait", is_flag=True, help="Follow the backfill with a progress bar until its runs finish.")
@click.option("--poll", default=5.0, show_default=True, type=click.FloatRange(0.1, 600),
              help="Seconds between status reads with --wait.")
@click.option("--timeout", default=3600.0, show_default=True, type=click.FloatRange(1, None),
              help="With --wait, give up (exit 1) after this many seconds; the backfill goes on.")
@json_option("Print the backfill id, its periods and (with --wait) its final state as JSON.")
@pass_ctx
def backfill(ctx: Context, report_id: str, first: str, last: str, location: str, wait: bool,
             poll: float, timeout: float, as_json: bool) -> None:
    """Launch a Dagster backfill of REPORT_ID over the periods --from to --to.

    The backfill appears under Backfills in the Dagster UI at once; the daemon launches one
    <frequency>_reports_job run per period (publishing follows each run as usual). Every period
    must have ended in the report's timezone. Exit 1 with --wait when a run failed.
    """
    from dagster import DagsterInstance

    from compliance_reports.orchestration.report_backfills import (
        backfill_periods,
        backfill_progress,
        launch_report_backfill,
    )
    from compliance_reports.scheduling import PeriodRefused

    report = get_report(ctx, report_id)
    try:
        periods = backfill_periods(report, first, last, datetime.now(timezone.utc))
    except PeriodRefused as exc:
        fail(str(exc))
    ensure_dagster_home(ctx.settings)
    with DagsterInstance.get() as instance:
        backfill_id = launch_report_backfill(instance, report, periods, location)
        outcome = {"backfill_id": backfill_id, "report_id": report_id, "periods": periods}
        if not as_json:
            click.echo(f"backfill {backfill_id}: {report_id}, {len(periods)} periods "
                       f"({periods[0]} to {periods[-1]}); the daemon launches the runs")
        if wait:
            state = _follow(instance, backfill_id, len(periods), poll, timeout, quiet=as_json,
                            progress=backfill_progress)
            outcome["state"] = state
    if as_json:
        emit_json(outcome)
    elif wait:
        click.echo(f"backfill {backfill_id}: {state['status']}, runs {state['runs']}"
                   + (f", error: {state['error']}" if state["error"] else ""))
    if wait and (not state["done"] or state["failed"] or state["error"]):
        sys.exit(1)


def _follow(instance, backfill_id: str, total: int, poll: float, timeout: float, quiet: bool, progress):
    """Poll until the backfill is done or `timeout` passes; a progress bar on stderr unless quiet."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    deadline = time.monotonic() + timeout
    bar = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TimeElapsedColumn(), console=Console(stderr=True), disable=quiet)
    with bar:
        task = bar.add_task("backfill runs", total=total)
        while True:
            state = progress(instance, backfill_id)
            bar.update(task, completed=state["finished"],
                       description=f"backfill {state['status'].lower()}, {state['failed']} failed")
            if state["done"] or time.monotonic() >= deadline:
                return state
            time.sleep(poll)
