"""`compliance-reports destinations apply|list|delete`: named delivery destinations."""

from __future__ import annotations

import click

from compliance_reports.cli.output import FILE, Context, emit_json, emit_table, fail, json_option, pass_ctx
from compliance_reports.config import store as config_store
from compliance_reports.config.loader import ConfigError, parse_destinations, read_documents


@click.group()
def destinations() -> None:
    """Named delivery destinations (email, webhook, storage)."""


@destinations.command("apply")
@click.option("-f", "--file", "files", multiple=True, required=True, type=FILE,
              help="YAML file of destination documents (repeat -f for several files).")
@json_option("Print what was inserted or updated as JSON.")
@pass_ctx
def destinations_apply(ctx: Context, files, as_json: bool) -> None:
    """Insert or update destinations from YAML files (one transaction per file)."""
    applied = []
    for file in files:
        try:
            docs = read_documents(file, "destination")
            parsed = parse_destinations(docs)
            outcomes = config_store.apply_destinations(
                ctx.app_engine, parsed, [d.label for d in docs], ctx.settings.storage_root
            )
        except ConfigError as exc:
            fail(str(exc))
        applied += outcomes
        if not as_json:
            for o in outcomes:
                click.echo(f"destination {o.key}: {o.action} (version {o.version})")
    if as_json:
        emit_json([{"destination": o.key, "action": o.action, "version": o.version} for o in applied])


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


@destinations.command("delete")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@json_option()
@pass_ctx
def destinations_delete(ctx: Context, name: str, yes: bool, as_json: bool) -> None:
    """Delete a destination that no report uses; the delivery ledger and stored files stay."""
    if not yes:
        click.confirm(f"Delete destination {name}?", abort=True)
    try:
        config_store.delete_destination(ctx.app_engine, name)
    except (config_store.NotFoundError, config_store.InUseError) as exc:
        fail(str(exc))
    if as_json:
        emit_json({"destination": name, "deleted": True})
        return
    click.echo(f"destination {name}: deleted (its ledger rows and any files it stored are kept; "
               "retention no longer removes those files)")
