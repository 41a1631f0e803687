"""`compliance-reports destinations apply|list`: named delivery destinations."""

from __future__ import annotations

import click

from compliance_reports.cli.output import Context, emit_json, emit_table, fail, pass_ctx
from compliance_reports.config import store as config_store
from compliance_reports.config.loader import ConfigError, parse_destinations, read_documents


@click.group()
def destinations() -> None:
    """Named delivery destinations (email, webhook, storage)."""


@destinations.command("apply")
@click.option("-f", "--file", "files", multiple=True, required=True, type=click.Path())
@pass_ctx
def destinations_apply(ctx: Context, files) -> None:
    """Insert or update destinations from YAML files (one transaction per file)."""
    for file in files:
        try:
            parsed = parse_destinations(read_documents(file, "destination"))
            outcomes = config_store.apply_destinations(ctx.app_engine, parsed)
        except ConfigError as exc:
            fail(str(exc))
        for o in outcomes:
            click.echo(f"destination {o.key}: {o.action} (version {o.version})")


@destinations.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_ctx
def destinations_list(ctx: Context, as_json: bool) -> None:
    """Stored destinations with their type and version (secrets are never stored)."""
    rows = config_store.list_destinations(ctx.app_engine)
    if as_json:
        emit_json(rows)
    else:
        emit_table(rows, ["name", "type", "version", "updated_at"])
