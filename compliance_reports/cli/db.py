"""`compliance-reports db upgrade`: create or migrate the schema."""

from __future__ import annotations

import click

from compliance_reports.cli.output import Context, emit_json, json_option, pass_ctx


@click.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@json_option("Print each database's revision as JSON.")
@pass_ctx
def db_upgrade(ctx: Context, as_json: bool) -> None:
    """Create or migrate the application and audit tables (safe to repeat)."""
    from compliance_reports.db import migrate

    states = migrate.upgrade_all(ctx.app_engine, ctx.audit_engine)
    if as_json:
        emit_json([{"database": s.target, "revision": s.current, "head": s.head} for s in states])
        return
    for state in states:
        click.echo(f"{state.target} database: at revision {state.current} (head {state.head})")
