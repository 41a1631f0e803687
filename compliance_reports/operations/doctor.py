"""`compliance-reports doctor`: is this deployment able to run and deliver reports?

Each check yields (status, subject, detail) lines; `fix` says what to do about a failure.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlparse

from sqlalchemy import Engine, text

from compliance_reports.artifacts.file_crypto import EncryptionKeyError, parse_key
from compliance_reports.audit.integrity import KeyFormatError, load_key
from compliance_reports.config import store as config_store
from compliance_reports.db import migrate
from compliance_reports.settings import Settings

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass(frozen=True)
class Check:
    status: str
    subject: str
    detail: str
    fix: str = ""

    def line(self) -> str:
        text_ = f"{self.status:<4}  {self.subject}: {self.detail}"
        return f"{text_}\n      fix: {self.fix}" if self.fix else text_


def check_databases(settings: Settings, app: Engine, audit: Engine) -> Iterator[Check]:
    for target, engine, var in (("app", app, "COMPLIANCE_DB_URL"), ("audit", audit, "AUDIT_DB_URL")):
        subject = f"{target} database ({engine.url.render_as_string(hide_password=True)})"
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any failure to connect is the finding
            yield Check(FAIL, subject, f"cannot connect: {type(exc).__name__}: {str(exc).splitlines()[0]}",
                        f"check {var} and that the server is running")
            continue
        state = migrate.state(target, engine)
        if state.up_to_date:
            yield Check(OK, subject, f"reachable, schema at {state.current}")
        else:
            yield Check(FAIL, subject, f"schema at {state.current or 'nothing'}, code expects {state.head}",
                        "run `compliance-reports db upgrade`")


def _named_env(dest) -> list[tuple[str, str]]:
    names = []
    for field in ("password_env", "signing_secret_env", "access_key_id_env", "secret_access_key_env"):
        value = getattr(dest, field, None)
        if value:
            names.append((field, value))
    for header, var in (getattr(dest, "headers_env", None) or {}).items():
        names.append((f"headers_env.{header}", var))
    for parameter, var in (getattr(dest, "query_env", None) or {}).items():
        names.append((f"query_env.{parameter}", var))
    return names


def check_environment(app: Engine) -> Iterator[Check]:
    for row in config_store.list_destinations(app):
        dest = config_store.get_destination(app, row["name"])
        for field, var in _named_env(dest):
            if os.environ.get(var):
                yield Check(OK, f"destination {dest.name}", f"{field} variable {var} is set")
            else:
                yield Check(FAIL, f"destination {dest.name}", f"{field} names {var}, which is not set",
                            f"export {var}=... in the environment of the code server and the run workers")
    checkpoint_key_ok = _key_usable("COMPLIANCE_CHECKPOINT_KEY")
    for report in config_store.list_reports(app):
        var = report.export.encryption_key_env
        if report.export.encrypt and var and not os.environ.get(var):
            yield Check(FAIL, f"report {report.id}", f"export.encryption_key_env names {var}, which is not set",
                        f"export {var}=<64 hex characters> (e.g. `openssl rand -hex 32`)")
        elif report.export.encrypt and var:
            try:
                parse_key(os.environ[var], var)
            except EncryptionKeyError as exc:
                yield Check(FAIL, f"report {report.id}", str(exc), f"export {var}=$(openssl rand -hex 32)")
        if report.export.redact_identifiers and not checkpoint_key_ok:
            yield Check(FAIL, f"report {report.id}",
                        "export.redact_identifiers needs a usable COMPLIANCE_CHECKPOINT_KEY (the pseudonym key)",
                        "export COMPLIANCE_CHECKPOINT_KEY=$(openssl rand -hex 32)")
    for var, role in (("COMPLIANCE_MANIFEST_KEY", "export manifests are not signed"),
                      ("COMPLIANCE_CHECKPOINT_KEY", "integrity checkpoints are not written")):
        if _key_usable(var):
            yield Check(OK, "signing keys", f"{var} is set")
        elif os.environ.get(var):
            yield Check(FAIL, "signing keys", f"{var} is not valid UTF-8 text",
                        f"export {var}=$(openssl rand -hex 32)")
        else:
            yield Check(WARN, "signing keys", f"{var} is not set: {role}",
                        f"export {var}=$(openssl rand -hex 32)")


def _key_usable(variable: str) -> bool:
    try:
        return load_key(variable=variable) is not None
    except KeyFormatError:
        return False
def check_alert_fallback(settings: Settings, app: Engine) -> Iterator[Check]:
    """COMPLIANCE_ALERT_FALLBACK, when set, names a destination that can carry alerts."""
    name = settings.alert_fallback
    if not name:
        yield Check(OK, "alert fallback", f"alerts no channel can carry are written to {settings.alerts_log}")
        return
    try:
        dest = config_store.get_destination(app, name)
    except config_store.NotFoundError:
        yield Check(FAIL, "alert fallback", f"COMPLIANCE_ALERT_FALLBACK names {name}, which does not exist",
                    "apply that destination, or unset the variable to use the alerts.log file")
        return
    if dest.type not in ("email", "webhook"):
        yield Check(FAIL, "alert fallback", f"COMPLIANCE_ALERT_FALLBACK names {name}, a {dest.type} destination "
                    "that cannot carry alerts", "name an email or webhook destination")
        return
    yield Check(OK, "alert fallback", f"destination {name}, then {settings.alerts_log}")


def _tcp(host: str, port: int, timeout: float = 3.0) -> str | None:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except OSError as exc:
        return str(exc)


def check_reachability(app: Engine) -> Iterator[Check]:
    from compliance_reports.delivery.outbound import url_problem

    for row in config_store.list_destinations(app):
        dest = config_store.get_destination(app, row["name"])
        subject = f"destination {dest.name}"
        if dest.type == "email":
            problem = _tcp(dest.host, dest.port)
            where = f"SMTP {dest.host}:{dest.port}"
        elif dest.type == "webhook":
            parsed = urlparse(dest.url)
            port = parsed.port or (443 if parsed.scheme == "https" else 80)
            where = f"webhook host {parsed.hostname}:{port}"
            # The doctor connects only where a delivery would be allowed to.
            problem = None if dest.allow_private_network else url_problem(dest.url)
            problem = problem or _tcp(parsed.hostname or "", port)
        elif dest.provider == "s3":
            where = f"S3 bucket {dest.bucket}"
            try:
                from compliance_reports.delivery.storage_channel import s3_client

                s3_client(dest).head_bucket(Bucket=dest.bucket)
                problem = None
            except Exception as exc:  # noqa: BLE001
                from compliance_reports.delivery.outbound import blocked_cause

                blocked = blocked_cause(exc)
                problem = str(blocked) if blocked else f"{type(exc).__name__}: {exc}"
        else:
            from compliance_reports.delivery.storage_channel import storage_location

            from compliance_reports.artifacts.storage_root import OutsideRootError, check_folder
            from compliance_reports.settings import load_settings

            folder = storage_location(dest)
            where = f"folder {folder}"
            parent = folder
            while parent and not os.path.exists(parent):
                parent = os.path.dirname(parent)
            problem = None if os.access(parent or ".", os.W_OK) else "not writable"
            try:
                check_folder(load_settings().storage_root, dest.base_path)
            except OutsideRootError as exc:
                problem = str(exc)
        if problem:
            yield Check(FAIL, subject, f"{where} unreachable: {problem}",
                        "check the address, the network path and the credentials")
        else:
            yield Check(OK, subject, f"{where} reachable")


def check_daemon(max_age_s: float = 300) -> Iterator[Check]:
    from datetime import datetime, timezone

    from dagster import DagsterInstance

    if not os.environ.get("DAGSTER_HOME"):
        yield Check(FAIL, "dagster daemon", "DAGSTER_HOME is not set", "set DAGSTER_HOME to the instance folder")
        return
    try:
        instance = DagsterInstance.get()
    except Exception as exc:  # noqa: BLE001
        yield Check(FAIL, "dagster instance", f"cannot load: {exc}", "check $DAGSTER_HOME/dagster.yaml")
        return
    with instance:
        heartbeats = instance.get_daemon_heartbeats()
        required = instance.get_required_daemon_types()
        now = datetime.now(timezone.utc).timestamp()
        if not any(heartbeats.get(t) for t in required):
            yield Check(FAIL, "dagster daemon", "no daemon has sent a heartbeat to this instance",
                        "start `dagster-daemon run -w workspace.yaml` (exactly one per instance)")
            return
        for daemon_type in required:
            beat = heartbeats.get(daemon_type)
            if beat is None:
                yield Check(FAIL, "dagster daemon", f"{daemon_type} has never sent a heartbeat",
                            "start `dagster-daemon run -w workspace.yaml` (exactly one per instance)")
            elif now - beat.timestamp > max_age_s:
                yield Check(FAIL, "dagster daemon", f"{daemon_type} last heartbeat {now - beat.timestamp:.0f} s ago",
                            "restart `dagster-daemon run`; see its log")
            elif beat.errors:
                yield Check(WARN, "dagster daemon", f"{daemon_type} alive with errors: {beat.errors[0].message}")
            else:
                yield Check(OK, "dagster daemon", f"{daemon_type} alive")


def check_recent_failures(app: Engine, days: int = 7) -> Iterator[Check]:
    """Failed runs and failed or dead deliveries of the last `days` days.

    Failed runs and failed deliveries warn (run retries, the failure alert and the retry sweep
    handle them); a dead delivery fails: a recipient is missing a report until someone acts.
    """
    from dagster import DagsterInstance

    from compliance_reports.operations.status import recent_failures

    try:
        instance = DagsterInstance.get()
    except Exception as exc:  # noqa: BLE001 - reported by check_daemon as well
        yield Check(WARN, "recent failures", f"Dagster instance not readable: {exc}")
        return
    with instance:
        recent = recent_failures(app, instance, days)
    runs = recent["failed_runs"]
    if runs:
        shown = ", ".join(f"{r['job']} {r['report_id'] or '-'} {r['period'] or ''} ({r['run_id'][:8]})".replace("  ", " ")
                          for r in runs[:5])
        more = f" and {len(runs) - 5} more" if len(runs) > 5 else ""
        yield Check(WARN, "recent runs", f"{len(runs)} failed run(s) in the last {days} days: {shown}{more}",
                    "`compliance-reports status` and `history REPORT_ID` show the errors")
    else:
        yield Check(OK, "recent runs", f"no failed run in the last {days} days")
    by_status: dict[str, list[str]] = {"failed": [], "dead": []}
    for row in recent["deliveries"]:
        by_status[row["status"]].append(f"{row['destination']}: {row['count']}")
    if by_status["dead"]:
        yield Check(FAIL, "recent deliveries", f"dead deliveries in the last {days} days ({', '.join(by_status['dead'])})",
                    "fix the destination, then `compliance-reports deliveries retry --include-dead`")
    if by_status["failed"]:
        yield Check(WARN, "recent deliveries", f"failed deliveries awaiting retry ({', '.join(by_status['failed'])})")
    if not by_status["dead"] and not by_status["failed"]:
        yield Check(OK, "recent deliveries", f"no failed or dead delivery in the last {days} days")
