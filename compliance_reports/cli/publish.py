"""`compliance-reports publish retry`: resume a report period's publish without Dagster.

For a publish run that failed (artifact store or database unavailable, a destination down past
the run's retries) when the report run itself succeeded: the newest stored report run of the
period (or --run) is exported, or its stored files reused when its manifest exists, then every
destination gets what it has not yet received, through the same ledger as the publish job:
nothing already sent is sent again. Exit status 0 when every delivery went through, 1 when
some did not (they stay in the ledger for the retry sweep), 2 on bad input.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import click

from compliance_reports.cli.deliveries import emit_outcomes
from compliance_reports.cli.output import Context, fail, get_report, pass_ctx


@click.group()
def publish() -> None:
    """Export and delivery of stored report runs."""


@publish.command("retry")
@click.option("--report", "report_id", required=True, help="The report id.")
@click.option("--period", required=True, help="The period key.")
@click.option("--run", "run_id", default=None, help="The report run to publish; default: the newest stored one.")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@pass_ctx
def publish_retry(ctx: Context, report_id: str, period: str, run_id: str | None, as_json: bool) -> None:
    """Resume a failed publish of one period from its stored files."""
    from compliance_reports.artifacts.manifest import ManifestKeyError, load_manifest_key
    from compliance_reports.artifacts.store import open_store
    from compliance_reports.config import store as config_store
    from compliance_reports.exporters.publishing import resume_publish

    engine = ctx.app_engine
    report = get_report(ctx, report_id)
    try:
        destinations = [config_store.get_destination(engine, name) for name in report.destinations]
        alerts = [config_store.get_destination(engine, name) for name in report.notify_on_failure]
    except config_store.NotFoundError as exc:
        fail(f"report {report_id}: {str(exc).strip(chr(39))}")
    try:
        manifest_key = load_manifest_key()
    except ManifestKeyError as exc:
        fail(str(exc))
    with tempfile.TemporaryDirectory(prefix="publish-retry-") as scratch:
        try:
            published, outcomes = resume_publish(
                engine, open_store(engine), report, period, destinations, Path(scratch),
                manifest_key=manifest_key, run_id=run_id, alert_destinations=alerts,
                log=lambda line: None if as_json else click.echo(line, err=True),
            )
        except LookupError as exc:
            fail(f"--period/--run: {str(exc).strip(chr(39))}")
    if not as_json:
        reused = "reused" if published.reused else "exported"
        click.echo(f"{report_id} {period}: run {published.report_run_id}, {len(published.files)} file(s) "
                   f"{reused}, manifest sha256 {published.manifest_sha256}")
    emit_outcomes(outcomes, as_json)
    if not all(o.delivered for o in outcomes):
        sys.exit(1)
