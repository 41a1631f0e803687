"""`compliance-reports env`: the one environment every process uses, for people and the Makefile."""

from __future__ import annotations

import os
import shlex

import click

from compliance_reports.cli.output import Context, emit_json, ensure_dagster_home, pass_ctx

# Variables the Makefile passes on to `dagster dev` (and so to the daemon and run workers).
SHOWN_PREFIXES = ("COMPLIANCE_", "AUDIT_DB_URL", "DAGSTER_HOME", "DAGSTER_PG_URL")


@click.command("env")
@click.option("--shell", is_flag=True,
              help="Print `export NAME=value` lines for `eval` (values included) instead of a summary.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_ctx
def env(ctx: Context, shell: bool, as_json: bool) -> None:
    """Show the effective environment: the environment file, then the process environment.

    The summary names each variable and where it came from, never its value. Also creates
    $DAGSTER_HOME with the embedded dagster.yaml when missing, so `dagster dev` can start.
    """
    from compliance_reports.settings import env_file_path, read_env_file

    ensure_dagster_home(ctx.settings)
    path, from_file = read_env_file()
    names = sorted({*from_file, *(n for n in os.environ if n.startswith(SHOWN_PREFIXES))})
    if shell:
        for name in names:
            click.echo(f"export {name}={shlex.quote(os.environ.get(name, from_file.get(name, '')))}")
        return
    rows = [{"name": name,
             "source": "file" if name in from_file and os.environ.get(name) == from_file[name]
             else "process"} for name in names]
    if as_json:
        emit_json({"env_file": str(env_file_path()), "exists": path.is_file(), "variables": rows})
        return
    click.echo(f"Environment file: {path} ({'found' if path.is_file() else 'absent'})")
    for row in rows:
        click.echo(f"  {row['name']:<40} {row['source']}")
