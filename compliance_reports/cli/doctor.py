"""`compliance-reports doctor`: the health checks of compliance_reports.operations.doctor."""

from __future__ import annotations

import dataclasses
import sys

import click

from compliance_reports.cli.output import Context, emit_json, json_option, pass_ctx


@click.command("doctor")
@click.option("--network", is_flag=True, help="Also connect to each SMTP server, webhook host and S3 bucket.")
@click.option("--no-daemon", is_flag=True, help="Skip the Dagster daemon heartbeat check.")
@json_option("Print the checks as JSON ({checks: [{status, subject, detail, fix}], failed, warnings}).")
@pass_ctx
def doctor(ctx: Context, network: bool, no_daemon: bool, as_json: bool) -> None:
    """Check databases, migrations, named secrets, reachability, the daemon and recent failures.

    Recent failures: failed runs and failed or dead deliveries of the last 7 days. Exit 0 when
    no check fails (warnings allowed), 1 otherwise.
    """
    from compliance_reports.cli.output import ensure_dagster_home
    from compliance_reports.operations import doctor as checks

    ensure_dagster_home(ctx.settings)
    results = list(checks.check_databases(ctx.settings, ctx.app_engine, ctx.audit_engine))
    databases_ok = all(r.status != checks.FAIL for r in results)
    if databases_ok:
        results += list(checks.check_environment(ctx.app_engine))
        results += list(checks.check_alert_fallback(ctx.settings, ctx.app_engine))
        if network:
            results += list(checks.check_reachability(ctx.app_engine))
    if not no_daemon:
        results += list(checks.check_daemon())
    if databases_ok:
        results += list(checks.check_recent_failures(ctx.app_engine))
    failed = sum(r.status == checks.FAIL for r in results)
    warnings = sum(r.status == checks.WARN for r in results)
    if as_json:
        emit_json({"checks": [dataclasses.asdict(r) for r in results], "failed": failed, "warnings": warnings})
    else:
        for result in results:
            click.echo(result.line())
        click.echo(f"{len(results)} checks: {failed} failed, {warnings} warnings")
    sys.exit(1 if failed else 0)
