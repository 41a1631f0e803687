"""`compliance-reports status`: one line per report, for people and (with --json) scripts."""

from __future__ import annotations

import sys

import click

from compliance_reports.cli.output import Context, emit_json, emit_table, ensure_dagster_home, pass_ctx


@click.command("status")
@click.option("--json", "as_json", is_flag=True, help="Print the statuses as a JSON list.")
@click.option("--strict", is_flag=True,
              help="Exit 1 when any report's last outcome is a failure or it has dead deliveries.")
@pass_ctx
def status(ctx: Context, as_json: bool, strict: bool) -> None:
    """Where each report stands: last period and outcome, integrity, next slot, delivery problems.

    OUTCOME is that of the newest report run and its publication (success, failure, running,
    never); LAST_PERIOD is the newest period with a stored report and INTEGRITY its verdict.
    FAILED/DEAD count delivery ledger rows; LAST_FAILURE is the newest failed run or delivery.
    """
    from dagster import DagsterInstance

    from compliance_reports.operations.status import report_statuses

    ensure_dagster_home(ctx.settings)
    with DagsterInstance.get() as instance:
        statuses = report_statuses(ctx.app_engine, instance)
    if as_json:
        emit_json([s.as_dict() for s in statuses])
    else:
        rows = [
            {
                "report_id": s.report_id,
                "last_period": s.last_period,
                "outcome": s.outcome if s.last_run_period in (None, s.last_period)
                else f"{s.outcome} ({s.last_run_period})",
                "integrity": s.integrity,
                "next_slot_local": s.next_slot_local or ("disabled" if not s.enabled else None),
                "next_slot_utc": s.next_slot_utc,
                "failed": s.deliveries.get("failed", 0),
                "dead": s.deliveries.get("dead", 0),
                "last_failure": _short(s.last_failure),
            }
            for s in statuses
        ]
        emit_table(rows, ["report_id", "last_period", "outcome", "integrity", "next_slot_local",
                          "next_slot_utc", "failed", "dead", "last_failure"])
    if strict and any(s.outcome == "failure" or s.deliveries.get("dead") for s in statuses):
        sys.exit(1)


def _short(text: str | None, width: int = 70) -> str | None:
    if text is None or len(text) <= width:
        return text
    return text[: width - 3] + "..."
