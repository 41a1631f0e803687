"""`compliance-reports`: the operator's command line (DESIGN section 8).

Exit status 0 on success, 1 on an operational failure, 2 on bad input (nothing written).
Every listing accepts --json for scripts.
"""

from __future__ import annotations

import click

from compliance_reports.cli.db import db
from compliance_reports.cli.deliveries import deliveries
from compliance_reports.cli.demo import demo
from compliance_reports.cli.destinations import destinations
from compliance_reports.cli.doctor import doctor
from compliance_reports.cli.files import FILE_COMMANDS
from compliance_reports.cli.integrity import integrity
from compliance_reports.cli.output import describe_failure, one_line
from compliance_reports.cli.reports import reports
from compliance_reports.cli.run import history, run_report
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
def main() -> None:
    """Scheduled compliance reports from audit-log tables."""


for command in (db, demo, destinations, templates, reports, run_report, history, doctor,
                deliveries, integrity, *FILE_COMMANDS):
    main.add_command(command)

if __name__ == "__main__":
    main()
