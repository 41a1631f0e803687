"""`compliance-reports demo seed|run`: deterministic audit traffic and the quick-start pipeline."""

from __future__ import annotations

import functools
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from compliance_reports.cli.output import (
    DAY,
    Context,
    emit_json,
    emit_table,
    ensure_dagster_home,
    fail,
    json_option,
    pass_ctx,
    progress_bar,
    progress_status,
)
from compliance_reports.config import store as config_store
from compliance_reports.config.loader import (
    ConfigError,
    parse_destinations,
    parse_reports,
    parse_templates,
    read_documents,
)


@click.group()
def demo() -> None:
    """Demo data, the quick-start pipeline and its local mail catcher."""


def _demo_port() -> int:
    import os

    return int(os.environ[DEMO_SMTP_PORT])


@demo.command("mail-catcher")
@pass_ctx
def demo_mail_catcher(ctx: Context) -> None:
    """Run the demo's mail catcher on the port recorded in the environment file until stopped.

    `make dev` starts it next to Dagster, so scheduled runs after `make demo` deliver their mail
    into <data folder>/outbox. Without a recorded port (no `make demo` yet) it exits at once.
    """
    import os
    import signal
    import threading

    from compliance_reports.demo.mail_catcher import MailCatcher
    from compliance_reports.settings import env_file_path

    port = os.environ.get(DEMO_SMTP_PORT, "")
    if not port.isdigit():
        click.echo(f"No {DEMO_SMTP_PORT} in {env_file_path()} (run `make demo` first): "
                   "no mail catcher started.")
        return
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    try:
        with MailCatcher(ctx.settings.outbox_dir, port=int(port)):
            click.echo(f"Demo mail catcher on 127.0.0.1:{port}, saving to {ctx.settings.outbox_dir}")
            stop.wait()
    except RuntimeError as exc:
        fail(f"demo mail-catcher: {exc}", status=1)


@demo.command("seed")
@click.option("--orgs", default=3, show_default=True, type=click.IntRange(1, 1000),
              help="Number of demo organizations.")
@click.option("--days", default=35, show_default=True, type=click.IntRange(1, 3660),
              help="Days of traffic, ending on --end-date.")
@click.option("--events-per-day", default=2000, show_default=True, type=click.IntRange(1, 10_000_000),
              help="Audit events per organization and day.")
@click.option("--seed", "seed_value", default=42, show_default=True, type=int,
              help="Random seed: the same seed and options give the same rows.")
@click.option("--tamper", default=0, show_default=True, type=click.IntRange(0, None),
              help="Alter this many rows afterwards without fixing their hash.")
@click.option("--end-date", type=DAY, default=None,
              help="Last UTC day to seed (default: today). Same options and end date, same rows.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@pass_ctx
def demo_seed(ctx: Context, orgs, days, events_per_day, seed_value, tamper, end_date, as_json) -> None:
    """Insert deterministic healthcare-SaaS audit traffic into audit_log."""
    from compliance_reports.db import migrate
    from compliance_reports.demo import seed as seeding

    migrate.upgrade("audit", ctx.audit_engine)
    options = seeding.SeedOptions(
        orgs=orgs, days=days, events_per_day=events_per_day, seed=seed_value, tamper=tamper,
        end_date=end_date,
    )
    total = orgs * days * events_per_day
    with progress_bar(total, "Seeding audit_log") as update:
        try:
            result = seeding.seed_audit_log(ctx.audit_engine, options, progress=lambda rows, _: update(rows))
        except ValueError as exc:
            fail(f"demo seed: {exc}")
    summary = {
        "rows": result.rows,
        "organizations": result.organizations,
        "seconds": round(result.seconds, 2),
        "rows_per_second": round(result.rows_per_second),
        "tampered_ids": result.tampered_ids,
        "first_timestamp": result.first_timestamp,
        "last_timestamp": result.last_timestamp,
    }
    if as_json:
        emit_json(summary)
        return
    click.echo(
        f"Seeded {result.rows:,} audit events for {len(result.organizations)} organizations "
        f"({', '.join(result.organizations)}) in {result.seconds:.1f} s "
        f"({result.rows_per_second:,.0f} rows/s)"
    )
    if result.tampered_ids:
        click.echo(f"Tampered rows (hash left stale): {result.tampered_ids}")


@demo.command("run")
@click.option("--examples", "examples_dir", default="examples", show_default=True,
              type=click.Path(exists=True, file_okay=False),
              help="Folder holding templates.yaml, destinations.yaml and reports.yaml.")
@click.option("--orgs", default=3, show_default=True, type=click.IntRange(1, 50),
              help="Number of demo organizations (when seeding an empty audit_log).")
@click.option("--days", default=100, show_default=True, type=click.IntRange(1, 3660),
              help="Days of traffic up to today (when seeding).")
@click.option("--events-per-day", default=600, show_default=True, type=click.IntRange(1, 1_000_000),
              help="Audit events per organization and day (when seeding).")
@json_option("Print the data folder, instance and each report's outcome as JSON (narration on stderr).")
@pass_ctx
def demo_run(ctx: Context, examples_dir: str, orgs: int, days: int, events_per_day: int, as_json: bool) -> None:
    """The quick-start pipeline on the embedded default: databases, data, configuration."""
    # With --json the narration goes to stderr and stdout holds only the summary document.
    say = functools.partial(click.echo, err=as_json)
    from sqlalchemy import func, select

    from compliance_reports.db import migrate
    from compliance_reports.db.schema import audit_log
    from compliance_reports.demo import seed as seeding

    settings = ctx.settings
    say(f"Data folder: {settings.data_dir}")
    env_file = _demo_environment(settings.data_dir)
    say(f"Demo signing keys and mail port: {env_file} (every command and `make dev` load it)")
    say(f"Application database: {settings.compliance_db_url}")
    for state in migrate.upgrade_all(ctx.app_engine, ctx.audit_engine):
        say(f"  {state.target} schema at revision {state.current}")

    with ctx.audit_engine.connect() as conn:
        existing = conn.execute(select(func.count()).select_from(audit_log)).scalar_one()
    if existing:
        say(f"audit_log already holds {existing:,} events: not seeding again "
                   "(`make demo-reset` starts over)")
    else:
        options = seeding.SeedOptions(orgs=orgs, days=days, events_per_day=events_per_day)
        with progress_bar(orgs * days * events_per_day, "Seeding audit_log") as update:
            result = seeding.seed_audit_log(ctx.audit_engine, options, progress=lambda rows, _: update(rows))
        say(f"Seeded {result.rows:,} audit events for {', '.join(result.organizations)} "
                   f"({result.rows_per_second:,.0f} rows/s)")
        starts = _demo_first_periods(options.day_range()[0])
        if starts:
            say("First periods of the report assets (the seeded data's start): "
                + ", ".join(f"{name.rsplit('_', 1)[-1].lower()} {value}" for name, value in starts.items()))

    folder = Path(examples_dir)
    try:
        for name, kind in (("templates.yaml", "template"), ("destinations.yaml", "destination")):
            docs = read_documents(folder / name, kind)
            if kind == "template":
                outcomes = config_store.apply_templates(ctx.app_engine, parse_templates(docs))
            else:
                outcomes = config_store.apply_destinations(
                    ctx.app_engine, _to_demo_catcher(parse_destinations(docs), _demo_port()),
                    [d.label for d in docs], ctx.settings.storage_root,
                )
            for o in outcomes:
                say(f"{kind} {o.key}: {o.action}")
        docs = read_documents(folder / "reports.yaml", "report")
        parsed = parse_reports(docs, config_store.load_templates(ctx.app_engine))
        for o in config_store.apply_reports(ctx.app_engine, parsed, [d.label for d in docs], "demo"):
            say(f"report {o.key}: {o.action} (version {o.version})")
    except (ConfigError, config_store.ConflictError) as exc:
        fail(str(exc))
    say("")
    home = ensure_dagster_home(settings)
    say(f"Dagster instance: {home}")
    rows = _demo_run_reports(ctx, say)
    if as_json:
        emit_json({"data_dir": str(settings.data_dir), "dagster_home": str(home), "reports": rows})
    else:
        say("")
        emit_table(rows, ["report_id", "period", "report_run", "publish", "files", "deliveries"])
        say("")
        emit_table(rows, ["report_id", "run_id", "folder"])
    if any(r["report_run"] != "SUCCESS" or r.get("publish") != "SUCCESS" for r in rows):
        fail("demo: some runs failed (see above)", status=1)
    say("")
    say("See them in the UI: `make dev`, then http://127.0.0.1:3000 (Assets, Runs).")


DEMO_KEYS = ("COMPLIANCE_MANIFEST_KEY", "COMPLIANCE_CHECKPOINT_KEY")
FREQUENCIES = ("daily", "weekly", "monthly", "quarterly")
DEMO_SMTP_PORT = "COMPLIANCE_DEMO_SMTP_PORT"
EXAMPLE_SMTP = ("127.0.0.1", 8025)  # what examples/destinations.yaml names for the catcher


def _port_is_free(port: int) -> bool:
    import socket

    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _demo_environment(data_dir: Path) -> Path:
    """Random signing keys and the mail catcher's port, kept in the environment file.

    Keys are generated once, so checkpoints and manifests of later demo runs verify with them
    (keys of an older checkout's data/demo.env are taken over). The port is the recorded one
    while it is free, else a new free one: two checkouts never share a catcher.
    """
    import os
    import secrets

    from compliance_reports.settings import env_file_path, parse_env_file, update_env_file

    path = env_file_path()
    values = parse_env_file(path.read_text(), str(path)) if path.exists() else {}
    legacy = data_dir / "demo.env"
    if legacy.exists():
        for name, value in parse_env_file(legacy.read_text(), str(legacy)).items():
            if name in DEMO_KEYS and value:
                values.setdefault(name, value)
    updates = {name: values.get(name) or secrets.token_hex(32) for name in DEMO_KEYS}
    port = values.get(DEMO_SMTP_PORT, "")
    if not (port.isdigit() and _port_is_free(int(port))):
        port = str(_free_port())
    updates[DEMO_SMTP_PORT] = port
    update_env_file(path, updates)
    for name, value in updates.items():
        # The process environment wins, except for the port this run has just chosen.
        if name == DEMO_SMTP_PORT:
            os.environ[name] = value
        else:
            os.environ.setdefault(name, value)
    return path


def _demo_first_periods(first_day) -> dict[str, str]:
    """Start each report asset at the period holding the first seeded day, so the UI's missing
    counts are periods without a report since the data began, not since 2020; never after the
    period before the current one, which the demo itself runs (any timezone). Recorded in the
    environment file unless a start is already set there or in the environment."""
    import os
    from datetime import timedelta
    from datetime import timezone as tz

    from compliance_reports.periods import period_start_for, previous_period_key
    from compliance_reports.settings import env_file_path, parse_env_file, update_env_file

    path = env_file_path()
    recorded = parse_env_file(path.read_text(), str(path)) if path.exists() else {}
    starts = {}
    for frequency in FREQUENCIES:
        name = f"COMPLIANCE_FIRST_PERIOD_{frequency.upper()}"
        if not recorded.get(name) and not os.environ.get(name):
            current = period_start_for(datetime.now(tz.utc).date() - timedelta(days=2), frequency)
            starts[name] = min(period_start_for(first_day, frequency).isoformat(),
                               previous_period_key(current.isoformat(), frequency))
    if starts:
        update_env_file(path, starts)
        os.environ.update(starts)
    return starts


def _to_demo_catcher(destinations: list, port: int) -> list:
    """The example email destinations that name the catcher, pointed at this demo's port."""
    return [
        d.model_copy(update={"port": port})
        if getattr(d, "type", None) == "email" and (d.host, d.port) == EXAMPLE_SMTP else d
        for d in destinations
    ]


def _demo_run_reports(ctx: Context, say=click.echo) -> list[dict[str, Any]]:
    """Run, export and deliver the latest ended period of every enabled report."""
    from datetime import timezone as tz

    from dagster import DagsterInstance

    from compliance_reports.delivery import ledger
    from compliance_reports.demo.mail_catcher import MailCatcher
    from compliance_reports.orchestration.manual_run import publish_now, run_report_now
    from compliance_reports.periods import latest_ended_period

    rows = []
    now = datetime.now(tz.utc)
    urls = dict(app_db_url=ctx.settings.compliance_db_url, audit_db_url=ctx.settings.audit_db_url)
    outbox = ctx.settings.outbox_dir
    port = _demo_port()
    with MailCatcher(outbox, port=port) as catcher, DagsterInstance.get() as instance:
        say(f"Mail catcher listening on 127.0.0.1:{port}, saving to {outbox}")
        for report in config_store.list_reports(ctx.app_engine, enabled=True):
            period = latest_ended_period(now, report.frequency, report.schedule.timezone)
            with progress_status(f"Running {report.id} for {period} ({report.frequency}_reports_job)"):
                outcome = run_report_now(report, period, instance=instance, log_level="WARNING", **urls)
            say(f"{report.id} {period}: {outcome['status']}, integrity {outcome['integrity_verdict']}, "
                       f"{outcome['event_count'] or 0:,} events")
            row = {"report_id": report.id, "period": period, "report_run": outcome["status"],
                   "run_id": outcome["run_id"], "files": "-", "deliveries": "-", "folder": "-"}
            for message in outcome["messages"]:
                click.echo(f"  {message}", err=True)
            if outcome["status"] == "SUCCESS":
                published = publish_now(instance, report.frequency, outcome["run_id"],
                                        log_level="WARNING", **urls)
                for message in published["messages"]:
                    click.echo(f"  {message}", err=True)
                row["publish"] = published["status"]
                if published["published"]:
                    files = published["published"]["files"]
                    row["files"] = ", ".join(f["filename"].split("_", 1)[-1] for f in files)
                    row["folder"] = str(Path(files[0]["location"]).parent) if files else "-"
                sent = [r for r in ledger.list_rows(ctx.app_engine, report_id=report.id)
                        if r["period"] == period]
                row["deliveries"] = ", ".join(
                    f"{r['destination']}:{r['recipient'].split('/')[-1]}={r['status']}" for r in sent
                ) or "none configured"
            rows.append(row)
        say(f"{len(catcher.saved)} mail(s) saved in {outbox}")
    return rows
