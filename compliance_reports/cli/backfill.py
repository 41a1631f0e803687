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
@click.option("--batch-size", type=click.IntRange(1, 366), default=None,
              help="Periods per run (default: half the periods, at most 50, so two runs share the work).")
@click.option("--per-period", is_flag=True,
              help="One <frequency>_reports_job run per period through a Dagster job backfill (listed under "
                   "Backfills in the UI) instead of batched report_backfill_job runs; each run then publishes "
                   "through its own publish run.")
@click.option("--wait", is_flag=True, help="Follow the backfill with a progress bar until its runs finish.")
@click.option("--poll", default=5.0, show_default=True, type=click.FloatRange(0.1, 600),
              help="Seconds between status reads with --wait.")
@click.option("--timeout", default=3600.0, show_default=True, type=click.FloatRange(1, None),
              help="With --wait, give up (exit 1) after this many seconds; the backfill goes on.")
@json_option("Print the backfill id, its periods and (with --wait) its final state as JSON.")
@pass_ctx
def backfill(ctx: Context, report_id: str, first: str, last: str, location: str, batch_size: int | None,
             per_period: bool, wait: bool, poll: float, timeout: float, as_json: bool) -> None:
    """Backfill REPORT_ID over the periods --from to --to through the daemon.

    By default the periods are split into batches of consecutive periods, one queued
    report_backfill_job run each (runs tagged compliance_reports/backfill=<id>); a run builds,
    checks, exports and delivers its periods one after another, and every period shows as a
    materialized partition of the report asset with its checks and its publication. With
    --per-period, a Dagster job backfill (under Backfills in the UI) launches one
    <frequency>_reports_job run per period and a publish run follows each. Every period must
    have ended in the report's timezone. Exit 1 with --wait when a run failed.
    """
    from dagster import DagsterInstance

    from compliance_reports.orchestration.report_backfills import (
        backfill_periods,
        backfill_progress,
        batched_backfill_progress,
        default_batch_size,
        launch_batched_backfill,
        launch_report_backfill,
    )
    from compliance_reports.scheduling import PeriodRefused

    report = get_report(ctx, report_id)
    try:
        periods = backfill_periods(report, first, last, datetime.now(timezone.utc))
    except PeriodRefused as exc:
        fail(str(exc))
    ensure_dagster_home(ctx.settings)
    if per_period and batch_size is not None:
        fail("--batch-size: batches are not used with --per-period")
    with DagsterInstance.get() as instance:
        if per_period:
            backfill_id = launch_report_backfill(instance, report, periods, location)
            outcome = {"backfill_id": backfill_id, "report_id": report_id, "periods": periods}
            progress = backfill_progress
            how = "one run per period"
        else:
            size = batch_size or default_batch_size(len(periods))
            try:
                backfill_id, run_ids = launch_batched_backfill(instance, report, periods, size, location)
            except ValueError as exc:
                fail(str(exc))
            outcome = {"backfill_id": backfill_id, "report_id": report_id, "periods": periods,
                       "batch_size": size, "run_ids": run_ids}
            progress = batched_backfill_progress
            how = f"{len(run_ids)} queued report_backfill_job runs of up to {size} periods"
        if not as_json:
            click.echo(f"backfill {backfill_id}: {report_id}, {len(periods)} periods "
                       f"({periods[0]} to {periods[-1]}), {how}; the daemon launches the runs")
        if wait:
            state = _follow(instance, backfill_id, len(periods), poll, timeout, quiet=as_json,
                            progress=progress)
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
