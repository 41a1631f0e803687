"""`compliance-reports`: the operator's command line (DESIGN section 8).

Exit status 0 on success, 1 on an operational failure, 2 on bad input (nothing written).
Every listing accepts --json for scripts.
"""

from __future__ import annotations

import click

from compliance_reports.cli.backfill import backfill
from compliance_reports.cli.db import db
from compliance_reports.cli.deliveries import deliveries
from compliance_reports.cli.demo import demo
from compliance_reports.cli.destinations import destinations
from compliance_reports.cli.doctor import doctor
from compliance_reports.cli.environment import env
from compliance_reports.cli.files import FILE_COMMANDS
from compliance_reports.cli.integrity import integrity
from compliance_reports.cli.metrics import serve_metrics
from compliance_reports.cli.output import describe_failure, fail, one_line
from compliance_reports.cli.publish import publish
from compliance_reports.cli.reports import reports
from compliance_reports.cli.run import history, run_report
from compliance_reports.cli.status import status
from compliance_reports.cli.templates import templates


class _Main(click.Group):
    """The command group, with one line for every error.

    Usage errors print one line (the command and what is wrong) with status 2. An exception a
    command did not handle is the last resort: one line, status 2 when the input was at fault
    (the database refused a value, a date overflowed) and 1 otherwise, never a traceback.
    """

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            raise _usage(exc) from None

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _usage(exc) from None
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - the last resort described above
            status, message = describe_failure(exc)
            click.echo(message, err=True)
            ctx.exit(status)


def _usage(exc: click.UsageError) -> click.ClickException:
    where = exc.ctx.command_path if exc.ctx is not None else "compliance-reports"
    error = click.ClickException(f"{where}: {one_line(exc.format_message())} (see --help)")
    error.exit_code = 2
    return error


@click.group(cls=_Main)
@click.version_option(package_name="compliance-reports", prog_name="compliance-reports",
                      message="%(prog)s %(version)s")
def main() -> None:
    """Scheduled compliance reports from audit-log tables.

    Every command first loads the environment file ($COMPLIANCE_ENV_FILE, default
    <data folder>/compliance.env); variables already set in the environment win.
    """
    from compliance_reports.settings import apply_environment

    try:
        apply_environment()
    except ValueError as exc:
        fail(f"COMPLIANCE_ENV_FILE: {exc}")


for command in (db, demo, destinations, templates, reports, run_report, backfill, history, doctor,
                deliveries, publish, integrity, env, status, serve_metrics, *FILE_COMMANDS):
    main.add_command(command)

if __name__ == "__main__":
    main()
