"""`compliance-reports`: the operator's command line (DESIGN section 8).

Exit status 0 on success, 1 on an operational failure, 2 on bad input (nothing written).
Every listing accepts --json for scripts.
"""

from __future__ import annotations

import getpass
import json
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import click

from compliance_reports.config import store as config_store
from compliance_reports.config.loader import (
    ConfigError,
    parse_destinations,
    parse_reports,
    parse_templates,
    read_documents,
)
from compliance_reports.db.engine import make_engine
from compliance_reports.settings import Settings, load_settings


class Context:
    def __init__(self) -> None:
        self.settings: Settings = load_settings()
        self._app = None
        self._audit = None

    @property
    def app_engine(self):
        if self._app is None:
            self._app = make_engine(self.settings.compliance_db_url)
        return self._app

    @property
    def audit_engine(self):
        if self._audit is None:
            if self.settings.audit_db_url == self.settings.compliance_db_url:
                self._audit = self.app_engine
            else:
                self._audit = make_engine(self.settings.audit_db_url)
        return self._audit


pass_ctx = click.make_pass_decorator(Context, ensure=True)


def _default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def emit_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, default=_default, ensure_ascii=False))


def emit_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    if not rows:
        click.echo("(none)")
        return
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(columns, widths)).rstrip())
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip())


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def fail(message: str, status: int = 2) -> None:
    click.echo(message, err=True)
    sys.exit(status)


def ensure_dagster_home(settings: Settings) -> Path:
    """$DAGSTER_HOME, defaulting to <data folder>/dagster_home with the project's dagster.yaml."""
    import os
    import shutil

    home = Path(os.environ.get("DAGSTER_HOME") or settings.data_dir / "dagster_home")
    home.mkdir(parents=True, exist_ok=True)
    template = Path(__file__).resolve().parent.parent / "dagster.yaml"
    if not (home / "dagster.yaml").exists() and template.exists():
        shutil.copy(template, home / "dagster.yaml")
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def _actor() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "unknown"


@click.group()
def main() -> None:
    """Scheduled compliance reports from audit-log tables."""


# ---------------------------------------------------------------- db


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@pass_ctx
def db_upgrade(ctx: Context) -> None:
    """Create or migrate the application and audit tables (safe to repeat)."""
    from compliance_reports.db import migrate

    for state in migrate.upgrade_all(ctx.app_engine, ctx.audit_engine):
        click.echo(f"{state.target} database: at revision {state.current} (head {state.head})")


# ---------------------------------------------------------------- demo


@main.group()
def demo() -> None:
    """Demo data."""


@demo.command("seed")
@click.option("--orgs", default=3, show_default=True, type=click.IntRange(1, 1000))
@click.option("--days", default=35, show_default=True, type=click.IntRange(1, 3660))
@click.option("--events-per-day", default=2000, show_default=True, type=click.IntRange(1, 10_000_000))
@click.option("--seed", "seed_value", default=42, show_default=True, type=int)
@click.option("--tamper", default=0, show_default=True, type=click.IntRange(0, None),
              help="Alter this many rows afterwards without fixing their hash.")
@click.option("--end-date", type=click.DateTime(formats=["%Y-%m-%d"]), default=None,
              help="Last UTC day to seed (default: today). Same options and end date, same rows.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def demo_seed(ctx: Context, orgs, days, events_per_day, seed_value, tamper, end_date, as_json) -> None:
    """Insert deterministic healthcare-SaaS audit traffic into audit_log."""
    from compliance_reports.demo import seed as seeding
    from compliance_reports.db import migrate

    migrate.upgrade("audit", ctx.audit_engine)
    options = seeding.SeedOptions(
        orgs=orgs, days=days, events_per_day=events_per_day, seed=seed_value, tamper=tamper,
        end_date=end_date.date() if end_date else None,
    )
    total = orgs * days * events_per_day
    with click.progressbar(length=total, label="Seeding audit_log", file=sys.stderr) as bar:
        done = [0]

        def progress(rows: int, _total: int) -> None:
            bar.update(rows - done[0])
            done[0] = rows

        try:
            result = seeding.seed_audit_log(ctx.audit_engine, options, progress=progress)
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
              type=click.Path(exists=True, file_okay=False))
@click.option("--orgs", default=3, show_default=True, type=click.IntRange(1, 50))
@click.option("--days", default=100, show_default=True, type=click.IntRange(1, 3660))
@click.option("--events-per-day", default=600, show_default=True, type=click.IntRange(1, 1_000_000))
@pass_ctx
def demo_run(ctx: Context, examples_dir: str, orgs: int, days: int, events_per_day: int) -> None:
    """The quick-start pipeline on the embedded default: databases, data, configuration."""
    from sqlalchemy import func, select

    from compliance_reports.demo import seed as seeding
    from compliance_reports.db import migrate
    from compliance_reports.db.schema import audit_log

    settings = ctx.settings
    click.echo(f"Data folder: {settings.data_dir}")
    env_file = _demo_keys(settings.data_dir)
    click.echo(f"Demo signing keys: {env_file} (`make dev` loads them)")
    click.echo(f"Application database: {settings.compliance_db_url}")
    for state in migrate.upgrade_all(ctx.app_engine, ctx.audit_engine):
        click.echo(f"  {state.target} schema at revision {state.current}")

    with ctx.audit_engine.connect() as conn:
        existing = conn.execute(select(func.count()).select_from(audit_log)).scalar_one()
    if existing:
        click.echo(f"audit_log already holds {existing:,} events: not seeding again "
                   "(`make demo-reset` starts over)")
    else:
        options = seeding.SeedOptions(orgs=orgs, days=days, events_per_day=events_per_day)
        with click.progressbar(length=orgs * days * events_per_day, label="Seeding audit_log",
                               file=sys.stderr) as bar:
            done = [0]

            def progress(rows: int, _total: int) -> None:
                bar.update(rows - done[0])
                done[0] = rows

            result = seeding.seed_audit_log(ctx.audit_engine, options, progress=progress)
        click.echo(f"Seeded {result.rows:,} audit events for {', '.join(result.organizations)} "
                   f"({result.rows_per_second:,.0f} rows/s)")

    folder = Path(examples_dir)
    try:
        for name, kind in (("templates.yaml", "template"), ("destinations.yaml", "destination")):
            docs = read_documents(folder / name, kind)
            if kind == "template":
                outcomes = config_store.apply_templates(ctx.app_engine, parse_templates(docs))
            else:
                outcomes = config_store.apply_destinations(ctx.app_engine, parse_destinations(docs))
            for o in outcomes:
                click.echo(f"{kind} {o.key}: {o.action}")
        docs = read_documents(folder / "reports.yaml", "report")
        parsed = parse_reports(docs, config_store.load_templates(ctx.app_engine))
        for o in config_store.apply_reports(ctx.app_engine, parsed, [d.label for d in docs], "demo"):
            click.echo(f"report {o.key}: {o.action} (version {o.version})")
    except (ConfigError, config_store.ConflictError) as exc:
        fail(str(exc))
    click.echo("")
    home = ensure_dagster_home(settings)
    click.echo(f"Dagster instance: {home}")
    rows = _demo_run_reports(ctx)
    click.echo("")
    emit_table(rows, ["report_id", "period", "report_run", "publish", "files", "deliveries"])
    click.echo("")
    emit_table(rows, ["report_id", "run_id", "folder"])
    if any(r["report_run"] != "SUCCESS" or r.get("publish") != "SUCCESS" for r in rows):
        fail("demo: some runs failed (see above)", status=1)
    click.echo("")
    click.echo("See them in the UI: `make dev`, then http://127.0.0.1:3000 (Assets, Runs).")


DEMO_KEYS = ("COMPLIANCE_MANIFEST_KEY", "COMPLIANCE_CHECKPOINT_KEY")


def _demo_keys(data_dir: Path) -> Path:
    """Random signing keys for the demo, kept in <data>/demo.env (never in the repository).

    They are generated once, so checkpoints and manifests of later demo runs verify with them.
    """
    import os
    import secrets

    path = data_dir / "demo.env"
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            name, _, value = line.partition("=")
            if name in DEMO_KEYS and value:
                values[name] = value
    for name in DEMO_KEYS:
        values.setdefault(name, secrets.token_hex(32))
    data_dir.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    path.chmod(0o600)
    for name, value in values.items():
        os.environ.setdefault(name, value)
    return path


def _demo_run_reports(ctx: Context) -> list[dict[str, Any]]:
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
    with MailCatcher(outbox, port=8025) as catcher, DagsterInstance.get() as instance:
        click.echo(f"Mail catcher listening on 127.0.0.1:8025, saving to {outbox}")
        for report in config_store.list_reports(ctx.app_engine, enabled=True):
            period = latest_ended_period(now, report.frequency, report.schedule.timezone)
            click.echo(f"Running {report.id} for {period} ...")
            outcome = run_report_now(report, period, instance=instance, log_level="WARNING", **urls)
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
        click.echo(f"{len(catcher.saved)} mail(s) saved in {outbox}")
    return rows


# ---------------------------------------------------------------- destinations


@main.group()
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
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def destinations_list(ctx: Context, as_json: bool) -> None:
    rows = config_store.list_destinations(ctx.app_engine)
    if as_json:
        emit_json(rows)
    else:
        emit_table(rows, ["name", "type", "version", "updated_at"])


# ---------------------------------------------------------------- templates


@main.group()
def templates() -> None:
    """Report templates: defaults for new report configurations."""


@templates.command("apply")
@click.option("-f", "--file", "files", multiple=True, required=True, type=click.Path())
@pass_ctx
def templates_apply(ctx: Context, files) -> None:
    for file in files:
        try:
            parsed = parse_templates(read_documents(file, "template"))
        except ConfigError as exc:
            fail(str(exc))
        for o in config_store.apply_templates(ctx.app_engine, parsed):
            click.echo(f"template {o.key}: {o.action} (version {o.version})")


@templates.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def templates_list(ctx: Context, as_json: bool) -> None:
    found = config_store.load_templates(ctx.app_engine)
    rows = [t.model_dump(mode="json") for t in found.values()]
    if as_json:
        emit_json(rows)
    else:
        emit_table(rows, ["name", "description"])


# ---------------------------------------------------------------- reports


@main.group()
def reports() -> None:
    """Report configurations."""


@reports.command("apply")
@click.option("-f", "--file", "files", multiple=True, required=True, type=click.Path())
@pass_ctx
def reports_apply(ctx: Context, files) -> None:
    """Insert or update reports from YAML; an update must give the current version."""
    for file in files:
        try:
            docs = read_documents(file, "report")
            parsed = parse_reports(docs, config_store.load_templates(ctx.app_engine))
            outcomes = config_store.apply_reports(
                ctx.app_engine, parsed, [d.label for d in docs], _actor()
            )
        except (ConfigError, config_store.ConflictError) as exc:
            fail(str(exc))
        for o in outcomes:
            click.echo(f"report {o.key}: {o.action} (version {o.version})")


@reports.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def reports_list(ctx: Context, as_json: bool) -> None:
    rows = config_store.report_row_summary(ctx.app_engine)
    if as_json:
        emit_json(rows)
    else:
        emit_table(
            rows, ["id", "organization_id", "report_type", "frequency", "enabled", "version"]
        )


def _get_report(ctx: Context, report_id: str):
    try:
        return config_store.get_report(ctx.app_engine, report_id)
    except config_store.NotFoundError as exc:
        fail(str(exc))


@reports.command("show")
@click.argument("report_id")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def reports_show(ctx: Context, report_id: str, as_json: bool) -> None:
    report = _get_report(ctx, report_id)
    data = report.model_dump(mode="json", by_alias=True)
    if as_json:
        emit_json(data)
    else:
        import yaml

        click.echo(yaml.safe_dump(data, sort_keys=False, allow_unicode=True).rstrip())


@reports.command("enable")
@click.argument("report_id")
@pass_ctx
def reports_enable(ctx: Context, report_id: str) -> None:
    """Let the schedules request this report again."""
    try:
        version = config_store.set_enabled(ctx.app_engine, report_id, True)
        config_store.request(ctx.app_engine, report_id, "schedule", actor=_actor())
    except config_store.NotFoundError as exc:
        fail(str(exc))
    click.echo(f"report {report_id}: enabled (version {version})")


@reports.command("disable")
@click.argument("report_id")
@pass_ctx
def reports_disable(ctx: Context, report_id: str) -> None:
    """Stop requesting new runs; runs already queued still run (see unschedule)."""
    try:
        version = config_store.set_enabled(ctx.app_engine, report_id, False)
    except config_store.NotFoundError as exc:
        fail(str(exc))
    click.echo(f"report {report_id}: disabled (version {version})")


@reports.command("unschedule")
@click.argument("report_id")
@pass_ctx
def reports_unschedule(ctx: Context, report_id: str) -> None:
    """Disable the report and cancel its queued runs (through the schedule-requests sensor)."""
    try:
        request_id = config_store.request(ctx.app_engine, report_id, "unschedule", actor=_actor())
    except config_store.NotFoundError as exc:
        fail(str(exc))
    click.echo(f"report {report_id}: unschedule requested (request {request_id})")


@reports.command("run-now")
@click.argument("report_id")
@click.option("--period", default=None, help="Period key; default: the latest ended when the request is applied.")
@pass_ctx
def reports_run_now(ctx: Context, report_id: str, period: str | None) -> None:
    """Ask the daemon to run a report now (through the schedule-requests sensor, trigger `request`)."""
    from compliance_reports.periods import validate_period_key

    report = _get_report(ctx, report_id)
    if period is not None:
        try:
            validate_period_key(period, report.frequency)
        except ValueError as exc:
            fail(f"--period: {exc}")
    request_id = config_store.request(ctx.app_engine, report_id, "run_now", period=period, actor=_actor())
    click.echo(f"report {report_id}: run requested (request {request_id}"
               + (f", period {period})" if period else ", latest ended period)"))


@reports.command("delete")
@click.argument("report_id")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@pass_ctx
def reports_delete(ctx: Context, report_id: str, yes: bool) -> None:
    """Delete the configuration; run history and the delivery ledger are kept."""
    if not yes:
        click.confirm(f"Delete report {report_id}?", abort=True)
    try:
        config_store.delete_report(ctx.app_engine, report_id, actor=_actor())
    except config_store.NotFoundError as exc:
        fail(str(exc))
    click.echo(f"report {report_id}: deleted (queued runs will be cancelled)")


@reports.command("next-runs")
@click.argument("report_id")
@click.option("-n", "count", default=5, show_default=True, type=click.IntRange(1, 1000))
@click.option("--after", type=click.DateTime(), default=None,
              help="Start from this UTC instant instead of now (YYYY-MM-DDTHH:MM:SS).")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def reports_next_runs(ctx: Context, report_id: str, count: int, after, as_json: bool) -> None:
    """The next slots of a report, in its timezone and UTC, with the period each covers."""
    from datetime import timezone as tz

    from compliance_reports.periods import describe_slots

    report = _get_report(ctx, report_id)
    start = after.replace(tzinfo=tz.utc) if after else datetime.now(tz.utc)
    rows = describe_slots(report.schedule.to_spec(), start, count)
    if as_json:
        emit_json(rows)
        return
    click.echo(f"{report_id}: {report.frequency} at {report.schedule.time} {report.schedule.timezone}"
               + ("" if report.enabled else " (disabled: these slots will not run)"))
    emit_table(rows, ["slot_local", "slot_utc", "period", "window_start_utc", "window_end_utc"])


@main.command("run")
@click.argument("report_id")
@click.option("--period", default=None, help="Period key (its local start date); default: the latest ended.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def run_report(ctx: Context, report_id: str, period: str | None, as_json: bool) -> None:
    """Materialize one report period now through the Dagster instance at $DAGSTER_HOME."""
    from datetime import timezone as tz

    from compliance_reports.orchestration.manual_run import run_report_now
    from compliance_reports.periods import (
        latest_ended_period,
        period_has_ended,
        period_window,
        validate_period_key,
    )

    report = _get_report(ctx, report_id)
    ensure_dagster_home(ctx.settings)
    now = datetime.now(tz.utc)
    zone = report.schedule.timezone
    if period is None:
        period = latest_ended_period(now, report.frequency, zone)
    try:
        validate_period_key(period, report.frequency)
    except ValueError as exc:
        fail(f"--period: {exc}")
    if not period_has_ended(period, report.frequency, zone, now):
        window = period_window(period, report.frequency, zone)
        fail(f"--period: {period} has not ended in {zone} (it ends {window.end_local.isoformat()})")
    outcome = run_report_now(report, period, app_db_url=ctx.settings.compliance_db_url,
                             audit_db_url=ctx.settings.audit_db_url,
                             log_level="WARNING" if as_json else "INFO")
    if as_json:
        emit_json(outcome)
    else:
        click.echo(f"{report_id} {period}: run {outcome['run_id']} {outcome['status']}")
        for line in outcome.get("messages", []):
            click.echo(f"  {line}")
    if outcome["status"] != "SUCCESS":
        sys.exit(1)


@main.command("history")
@click.argument("report_id")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 10_000))
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def history(ctx: Context, report_id: str, limit: int, as_json: bool) -> None:
    """Dagster runs of a report (report and publish runs), newest first."""
    from dagster import DagsterInstance

    from compliance_reports.orchestration.dagster_runs import report_history

    ensure_dagster_home(ctx.settings)
    with DagsterInstance.get() as instance:
        rows = report_history(instance, report_id, limit)
    if as_json:
        emit_json(rows)
    else:
        emit_table(rows, ["run_id", "job", "status", "period", "trigger", "start", "end", "duration_s"])


@main.command("doctor")
@click.option("--network", is_flag=True, help="Also connect to each SMTP server, webhook host and S3 bucket.")
@click.option("--no-daemon", is_flag=True, help="Skip the Dagster daemon heartbeat check.")
@pass_ctx
def doctor(ctx: Context, network: bool, no_daemon: bool) -> None:
    """Check databases, migrations, named secrets, reachability and the daemon; exit 0 when all pass."""
    from compliance_reports.operations import doctor as checks

    groups = [checks.check_databases(ctx.settings, ctx.app_engine, ctx.audit_engine)]
    results = list(groups[0])
    if all(r.status != checks.FAIL for r in results):
        results += list(checks.check_environment(ctx.app_engine))
        if network:
            results += list(checks.check_reachability(ctx.app_engine))
    if not no_daemon:
        results += list(checks.check_daemon())
    for result in results:
        click.echo(result.line())
    failed = sum(r.status == checks.FAIL for r in results)
    click.echo(f"{len(results)} checks: {failed} failed, "
               f"{sum(r.status == checks.WARN for r in results)} warnings")
    sys.exit(1 if failed else 0)


def _register_subcommands() -> None:
    from compliance_reports.cli.deliveries import deliveries
    from compliance_reports.cli.files import FILE_COMMANDS
    from compliance_reports.cli.integrity import integrity

    main.add_command(deliveries)
    main.add_command(integrity)
    for command in FILE_COMMANDS:
        main.add_command(command)


_register_subcommands()

if __name__ == "__main__":
    main()
