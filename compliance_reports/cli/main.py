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
from compliance_reports.cli.publish import publish
from compliance_reports.cli.reports import reports
from compliance_reports.cli.run import history, run_report
from compliance_reports.cli.templates import templates


@click.group()
def main() -> None:
    """Scheduled compliance reports from audit-log tables."""


for command in (db, demo, destinations, templates, reports, run_report, history, doctor,
                deliveries, publish, integrity, *FILE_COMMANDS):
    main.add_command(command)

if __name__ == "__main__":
    main()
