"""`compliance-reports reports ...`: report configurations and requests to the daemon."""

from __future__ import annotations

import getpass
from datetime import datetime, timezone

import click

from compliance_reports.cli.output import (
    ACTOR,
    FILE,
    REPORT_ID,
    Context,
    emit_json,
    emit_table,
    fail,
    get_report,
    json_option,
    pass_ctx,
)
from compliance_reports.config import store as config_store
from compliance_reports.config.loader import ConfigError, parse_reports, read_documents
from compliance_reports.config.validation import DATE_MAX, DATE_MIN, check_actor


def _actor() -> str:
    """The login name, or 'unknown' when there is none usable (some containers)."""
    try:
        name = getpass.getuser()
        return check_actor(name)
    except Exception:  # noqa: BLE001 - no login name, or one that is not a storable name
        return "unknown"


@click.group()
def reports() -> None:
    """Report configurations."""


@reports.command("apply")
@click.option("-f", "--file", "files", multiple=True, required=True, type=FILE,
              help="YAML file of report documents (repeat -f for several files).")
@click.option("--as", "actor", type=ACTOR, default=None,
              help="Record this name as created_by of new reports (default: the login name).")
@json_option("Print what was inserted or updated as JSON.")
@pass_ctx
def reports_apply(ctx: Context, files, actor: str | None, as_json: bool) -> None:
    """Insert or update reports from YAML; an update must give the current version.

    created_by is the applying user (or --as), never a field of the file: a created_by in a
    document is ignored with a warning.
    """
    applied = []
    for file in files:
        warnings: list[str] = []
        try:
            docs = read_documents(file, "report")
            parsed = parse_reports(docs, config_store.load_templates(ctx.app_engine), warnings)
            outcomes = config_store.apply_reports(
                ctx.app_engine, parsed, [d.label for d in docs], actor or _actor()
            )
        except (ConfigError, config_store.ConflictError) as exc:
            fail(str(exc))
        for warning in warnings:
            click.echo(f"warning: {warning}", err=True)
        applied += outcomes
        if not as_json:
            for o in outcomes:
                click.echo(f"report {o.key}: {o.action} (version {o.version})")
    if as_json:
        emit_json([{"report": o.key, "action": o.action, "version": o.version} for o in applied])


@reports.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_ctx
def reports_list(ctx: Context, as_json: bool) -> None:
    """Stored report configurations: organization, type, frequency, enabled, version."""
    rows = config_store.report_row_summary(ctx.app_engine)
    if as_json:
        emit_json(rows)
    else:
        emit_table(
            rows, ["id", "organization_id", "report_type", "frequency", "enabled", "version"]
        )


@reports.command("show")
@click.argument("report_id", type=REPORT_ID)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of YAML.")
@pass_ctx
def reports_show(ctx: Context, report_id: str, as_json: bool) -> None:
    """One stored report configuration, as YAML (the form `reports apply` reads)."""
    report = get_report(ctx, report_id)
    data = report.model_dump(mode="json", by_alias=True)
    if as_json:
        emit_json(data)
    else:
        import yaml

        click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip())


@reports.command("enable")
@click.argument("report_id", type=REPORT_ID)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@pass_ctx
def reports_enable(ctx: Context, report_id: str, as_json: bool) -> None:
    """Let the schedules request this report again."""
    try:
        version = config_store.set_enabled(ctx.app_engine, report_id, True)
        request_id = config_store.request(ctx.app_engine, report_id, "schedule", actor=_actor())
    except config_store.NotFoundError as exc:
        fail(str(exc))
    if as_json:
        emit_json({"report_id": report_id, "enabled": True, "version": version, "request_id": request_id})
    else:
        click.echo(f"report {report_id}: enabled (version {version})")


@reports.command("disable")
@click.argument("report_id", type=REPORT_ID)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@pass_ctx
def reports_disable(ctx: Context, report_id: str, as_json: bool) -> None:
    """Stop requesting new runs; runs already queued still run (see unschedule)."""
    try:
        version = config_store.set_enabled(ctx.app_engine, report_id, False)
    except config_store.NotFoundError as exc:
        fail(str(exc))
    if as_json:
        emit_json({"report_id": report_id, "enabled": False, "version": version})
    else:
        click.echo(f"report {report_id}: disabled (version {version})")


@reports.command("unschedule")
@click.argument("report_id", type=REPORT_ID)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@pass_ctx
def reports_unschedule(ctx: Context, report_id: str, as_json: bool) -> None:
    """Disable the report and cancel its queued runs (through the schedule-requests sensor)."""
    try:
        request_id = config_store.request(ctx.app_engine, report_id, "unschedule", actor=_actor())
    except config_store.NotFoundError as exc:
        fail(str(exc))
    if as_json:
        emit_json({"report_id": report_id, "action": "unschedule", "request_id": request_id})
    else:
        click.echo(f"report {report_id}: unschedule requested (request {request_id})")


@reports.command("run-now")
@click.argument("report_id", type=REPORT_ID)
@click.option("--period", default=None, help="Period key; default: the latest ended when the request is applied.")
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON.")
@pass_ctx
def reports_run_now(ctx: Context, report_id: str, period: str | None, as_json: bool) -> None:
    """Ask the daemon to run a report now (through the schedule-requests sensor, trigger `request`).

    A period that may not run (not ended in the report's timezone, before the asset's first
    period, not a period of the report's frequency) is refused here with exit status 2.
    """
    from datetime import timezone as tz

    from compliance_reports.scheduling import PeriodRefused, check_requested_period

    report = get_report(ctx, report_id)
    if period is not None:
        try:
            check_requested_period(period, report.frequency, report.schedule.timezone, datetime.now(tz.utc))
        except PeriodRefused as exc:
            fail(f"--period: {exc}")
    request_id = config_store.request(ctx.app_engine, report_id, "run_now", period=period, actor=_actor())
    if as_json:
        emit_json({"report_id": report_id, "action": "run_now", "request_id": request_id, "period": period})
        return
    click.echo(f"report {report_id}: run requested (request {request_id}"
               + (f", period {period})" if period else ", latest ended period)"))


@reports.command("delete")
@click.argument("report_id", type=REPORT_ID)
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option()
@pass_ctx
def reports_delete(ctx: Context, report_id: str, yes: bool, as_json: bool) -> None:
    """Delete the configuration; run history and the delivery ledger are kept."""
    if not yes:
        click.confirm(f"Delete report {report_id}?", abort=True)
    try:
        config_store.delete_report(ctx.app_engine, report_id, actor=_actor())
    except config_store.NotFoundError as exc:
        fail(str(exc))
    if as_json:
        emit_json({"report_id": report_id, "deleted": True})
        return
    click.echo(f"report {report_id}: deleted (queued runs will be cancelled)")


@reports.command("next-runs")
@click.argument("report_id", type=REPORT_ID)
@click.option("-n", "count", default=5, show_default=True, type=click.IntRange(1, 1000),
              help="How many slots to list.")
@click.option("--after", type=click.DateTime(), default=None,
              help="Start from this UTC instant instead of now (YYYY-MM-DDTHH:MM:SS).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_ctx
def reports_next_runs(ctx: Context, report_id: str, count: int, after, as_json: bool) -> None:
    """The next slots of a report, in its timezone and UTC, with the period each covers."""
    from compliance_reports.periods import describe_slots

    report = get_report(ctx, report_id)
    if after is not None and not DATE_MIN <= after.date() <= DATE_MAX:
        fail(f"--after {after.date()} is outside {DATE_MIN} to {DATE_MAX}")
    start = after.replace(tzinfo=timezone.utc) if after else datetime.now(timezone.utc)
    try:
        rows = describe_slots(report.schedule.to_spec(), start, count)
    except OverflowError:
        fail(f"--after: the next {count} slots after {start.date()} run past the last date "
             "this tool handles")
    if as_json:
        emit_json(rows)
        return
    click.echo(f"{report_id}: {report.frequency} at {report.schedule.time} {report.schedule.timezone}"
               + ("" if report.enabled else " (disabled: these slots will not run)"))
    emit_table(rows, ["slot_local", "slot_utc", "period", "window_start_utc", "window_end_utc"])
