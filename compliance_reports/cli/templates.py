"""`compliance-reports templates apply|list`: defaults for new report configurations."""

from __future__ import annotations

import click

from compliance_reports.cli.output import FILE, Context, emit_json, emit_table, fail, json_option, pass_ctx
from compliance_reports.config import store as config_store
from compliance_reports.config.loader import ConfigError, parse_templates, read_documents


@click.group()
def templates() -> None:
    """Report templates: defaults for new report configurations."""


@templates.command("apply")
@click.option("-f", "--file", "files", multiple=True, required=True, type=FILE,
              help="YAML file of template documents (repeat -f for several files).")
@json_option("Print what was inserted or updated as JSON.")
@pass_ctx
def templates_apply(ctx: Context, files, as_json: bool) -> None:
    """Insert or update report templates from YAML files."""
    applied = []
    for file in files:
        try:
            parsed = parse_templates(read_documents(file, "template"))
        except ConfigError as exc:
            fail(str(exc))
        outcomes = config_store.apply_templates(ctx.app_engine, parsed)
        applied += outcomes
        if not as_json:
            for o in outcomes:
                click.echo(f"template {o.key}: {o.action} (version {o.version})")
    if as_json:
        emit_json([{"template": o.key, "action": o.action, "version": o.version} for o in applied])


@templates.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@pass_ctx
def templates_list(ctx: Context, as_json: bool) -> None:
    """Stored report templates."""
    found = config_store.load_templates(ctx.app_engine)
    rows = [t.model_dump(mode="json") for t in found.values()]
    if as_json:
        emit_json(rows)
    else:
        emit_table(rows, ["name", "description"])
