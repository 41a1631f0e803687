"""`compliance-reports db upgrade`: create or migrate the schema."""

from __future__ import annotations

import click

from compliance_reports.cli.output import Context, pass_ctx


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@pass_ctx
def db_upgrade(ctx: Context) -> None:
    """Create or migrate the application and audit tables (safe to repeat)."""
    from compliance_reports.db import migrate

    for state in migrate.upgrade_all(ctx.app_engine, ctx.audit_engine):
        click.echo(f"{state.target} database: at revision {state.current} (head {state.head})")
