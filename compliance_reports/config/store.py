"""Report configurations, destinations, templates and schedule requests in the database.

Every apply is one transaction per file: if any document fails validation against the
database (unknown destination, stale version), nothing of the file is written.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import Connection, Engine, delete, insert, select, update

from compliance_reports.config.loader import ConfigError
from compliance_reports.config.models import (
    ReportConfig,
    ReportTemplate,
    ScheduleRequest,
    parse_destination,
)
from compliance_reports.config.validation import check_actor
from compliance_reports.db.schema import (
    destinations,
    report_configs,
    report_templates,
    schedule_requests,
)


class NotFoundError(LookupError):
    pass


class ConflictError(Exception):
    """An update based on a version that is no longer current."""


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


@dataclass(frozen=True)
class ApplyOutcome:
    key: str
    action: str  # created | updated | unchanged
    version: int


# ---------------------------------------------------------------- destinations


def apply_destinations(
    engine: Engine,
    configs: list[Any],
    labels: list[str] | None = None,
    storage_root: Path | None = None,
) -> list[ApplyOutcome]:
    """Insert or update destinations; a given `version` must match (optimistic concurrency).

    Each destination is first checked against where it leads (destination_checks: storage
    folder inside the storage root, no internal address); any problem refuses the whole list.
    """
    from compliance_reports.config.destination_checks import destination_problems

    if storage_root is None:
        from compliance_reports.settings import load_settings

        storage_root = load_settings().storage_root
    labels = labels or [""] * len(configs)
    problems = [
        f"{label + ': ' if label else ''}destination {dest.name!r} field '{field}': {problem}"
        for dest, label in zip(configs, labels)
        for field, problem in destination_problems(dest, storage_root)
    ]
    if problems:
        raise ConfigError(problems)
    outcomes = []
    now = utcnow()
    with engine.begin() as conn:
        for dest in configs:
            stored = dest.model_dump(mode="json", by_alias=True)
            row = conn.execute(
                select(destinations.c.config, destinations.c.version).where(
                    destinations.c.name == dest.name
                )
            ).first()
            if row is None:
                conn.execute(
                    insert(destinations).values(
                        name=dest.name, type=dest.type, config=stored, version=1,
                        created_at=now, updated_at=now,
                    )
                )
                outcomes.append(ApplyOutcome(dest.name, "created", 1))
            elif row.config == stored:
                outcomes.append(ApplyOutcome(dest.name, "unchanged", row.version))
            else:
                conn.execute(
                    update(destinations)
                    .where(destinations.c.name == dest.name)
                    .values(type=dest.type, config=stored, version=row.version + 1, updated_at=now)
                )
                outcomes.append(ApplyOutcome(dest.name, "updated", row.version + 1))
    return outcomes


class InUseError(Exception):
    """A destination that reports still name cannot be deleted."""


def destination_users(conn: Connection, name: str) -> list[tuple[str, str]]:
    """(report id, field) for every report naming `name` in destinations or notify_on_failure."""
    users = []
    for row in conn.execute(select(report_configs.c.id, report_configs.c.config).order_by(report_configs.c.id)):
        for field in ("destinations", "notify_on_failure"):
            if name in (row.config or {}).get(field, []):
                users.append((row.id, field))
    return users


def delete_destination(engine: Engine, name: str) -> None:
    """Remove a destination no report uses; the ledger and the files it stored stay.

    The row is deleted before the reports are read, in one transaction: a report applied at the
    same time either commits first (and is seen here) or waits on the row lock and then finds
    the destination gone (apply_reports locks the destinations it names).
    """
    with engine.begin() as conn:
        result = conn.execute(delete(destinations).where(destinations.c.name == name))
        if result.rowcount == 0:
            raise NotFoundError(f"destination {name!r} does not exist")
        users = destination_users(conn, name)
        if users:
            named = ", ".join(f"{report} ({field})" for report, field in users)
            raise InUseError(
                f"destination {name!r} is used by report(s) {named}; remove it from those reports "
                "(and apply them) before deleting it"
            )


def list_destinations(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(select(destinations).order_by(destinations.c.name)).mappings().all()
    return [dict(r) for r in rows]


def get_destination(conn_or_engine: Engine | Connection, name: str):
    def _load(conn: Connection):
        row = conn.execute(
            select(destinations.c.config).where(destinations.c.name == name)
        ).first()
        if row is None:
            raise NotFoundError(f"destination {name!r} does not exist")
        return parse_destination(row.config)

    if isinstance(conn_or_engine, Connection):
        return _load(conn_or_engine)
    with conn_or_engine.connect() as conn:
        return _load(conn)


# ---------------------------------------------------------------- templates


def apply_templates(engine: Engine, templates: list[ReportTemplate]) -> list[ApplyOutcome]:
    outcomes = []
    now = utcnow()
    with engine.begin() as conn:
        for tpl in templates:
            stored = tpl.model_dump(mode="json")
            row = conn.execute(
                select(report_templates.c.config, report_templates.c.version).where(
                    report_templates.c.name == tpl.name
                )
            ).first()
            if row is None:
                conn.execute(
                    insert(report_templates).values(
                        name=tpl.name, config=stored, version=1, created_at=now, updated_at=now
                    )
                )
                outcomes.append(ApplyOutcome(tpl.name, "created", 1))
            elif row.config == stored:
                outcomes.append(ApplyOutcome(tpl.name, "unchanged", row.version))
            else:
                conn.execute(
                    update(report_templates)
                    .where(report_templates.c.name == tpl.name)
                    .values(config=stored, version=row.version + 1, updated_at=now)
                )
                outcomes.append(ApplyOutcome(tpl.name, "updated", row.version + 1))
    return outcomes


def load_templates(engine: Engine) -> dict[str, ReportTemplate]:
    with engine.connect() as conn:
        rows = conn.execute(select(report_templates.c.config)).all()
    templates = [ReportTemplate.model_validate(r.config) for r in rows]
    return {t.name: t for t in templates}


# ---------------------------------------------------------------- reports


def _report_from_row(row: Any) -> ReportConfig:
    data = dict(row.config)
    data["enabled"] = row.enabled
    data["version"] = row.version
    data["created_by"] = row.created_by  # the column is the record, not the document
    return ReportConfig.model_validate(data)


def _without_created_by(config: dict[str, Any]) -> dict[str, Any]:
    """Rows written before created_by left the document still carry it there."""
    return {k: v for k, v in config.items() if k != "created_by"}


def _as_stored_now(config: dict[str, Any]) -> dict[str, Any]:
    """A stored report as this version stores it: a row written before an option existed
    (options.pdf_table_row_limit, ...) lacks it, and applying the same file again must still
    be `unchanged`, not an update that needs a version. A row this version would refuse
    compares as it is."""
    config = _without_created_by(config)
    try:
        return ReportConfig.model_validate(config).stored()
    except ValidationError:
        return config


def redaction_problems(
    reports: list[ReportConfig], labels: list[str], environ: Mapping[str, str]
) -> list[str]:
    """Pseudonyms are keyed with the checkpoint key: without a usable key, redaction is refused
    (an unkeyed hash of an identifier can be reversed by trying candidate ids)."""
    from compliance_reports.audit.integrity import KEY_ENV, KeyFormatError, load_key

    wanting = [(r, label) for r, label in zip(reports, labels) if r.export.redact_identifiers]
    if not wanting:
        return []
    try:
        key = load_key(environ)
        reason = None if key else f"{KEY_ENV} is not set"
    except KeyFormatError as exc:
        reason = str(exc)
    if reason is None:
        return []
    return [
        f"{label + ': ' if label else ''}report {r.id!r} field 'export.redact_identifiers': "
        f"pseudonyms are keyed with {KEY_ENV}, but {reason}; set it where reports are applied "
        "and run"
        for r, label in wanting
    ]


def apply_reports(
    engine: Engine,
    reports: list[ReportConfig],
    labels: list[str] | None = None,
    actor: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> list[ApplyOutcome]:
    """Insert new reports; update existing ones only from their current version.

    `labels` (one per report, e.g. "file document 2") prefix every problem. A document
    identical to what is stored is left alone, so re-applying a file is harmless. `actor`
    becomes created_by of new reports (a file never sets it); `environ` (default os.environ)
    is where redacting reports find their key.
    """
    outcomes = []
    now = utcnow()
    labels = labels or [""] * len(reports)
    if actor is not None:
        try:
            check_actor(actor)
        except ValueError as exc:
            raise ConfigError([f"applying user: {exc}"]) from None
    problems = redaction_problems(reports, labels, os.environ if environ is None else environ)
    with engine.begin() as conn:
        named = {n for r in reports for n in (*r.destinations, *r.notify_on_failure)}
        # FOR SHARE (PostgreSQL): a concurrent `destinations delete` waits until this commits.
        known = set(conn.execute(
            select(destinations.c.name).where(destinations.c.name.in_(named)).with_for_update(read=True)
        ).scalars()) if named else set()
        for report, label in zip(reports, labels):
            prefix = f"{label}: " if label else ""
            for field in ("destinations", "notify_on_failure"):
                for name in getattr(report, field):
                    if name not in known:
                        problems.append(
                            f"{prefix}report {report.id!r} field '{field}': unknown destination "
                            f"{name!r} (apply it with `compliance-reports destinations apply`)"
                        )
        if problems:
            raise ConfigError(problems)
        for report, label in zip(reports, labels):
            prefix = f"{label}: " if label else ""
            stored = report.stored()
            row = conn.execute(
                select(report_configs).where(report_configs.c.id == report.id)
            ).first()
            if row is None:
                conn.execute(
                    insert(report_configs).values(
                        id=report.id, organization_id=report.organization_id, name=report.name,
                        report_type=report.report_type, frequency=report.frequency,
                        enabled=report.enabled, config=stored, version=1,
                        created_by=actor, created_at=now, updated_at=now,
                    )
                )
                outcomes.append(ApplyOutcome(report.id, "created", 1))
                continue
            current = _as_stored_now(dict(row.config))
            if current == stored and row.enabled == report.enabled:
                outcomes.append(ApplyOutcome(report.id, "unchanged", row.version))
                continue
            if report.version != row.version:
                given = "no version" if report.version is None else f"version {report.version}"
                problems.append(
                    f"{prefix}report {report.id!r} field 'version': conflict: the file gives "
                    f"{given} but the stored configuration is at version {row.version}; "
                    f"review `compliance-reports reports show {report.id}` and set "
                    f"version: {row.version} to update it"
                )
                continue
            if report.organization_id != row.organization_id:
                problems.append(
                    f"{prefix}report {report.id!r} field 'organization_id': cannot move a report "
                    f"from {row.organization_id!r} to another organization; create a new id"
                )
                continue
            result = conn.execute(
                update(report_configs)
                .where(report_configs.c.id == report.id, report_configs.c.version == row.version)
                .values(
                    name=report.name, report_type=report.report_type,
                    frequency=report.frequency, enabled=report.enabled, config=stored,
                    version=row.version + 1, updated_at=now,
                )
            )
            if result.rowcount != 1:
                problems.append(f"{prefix}report {report.id!r}: changed concurrently, retry")
                continue
            outcomes.append(ApplyOutcome(report.id, "updated", row.version + 1))
        if problems:
            raise ConflictError("\n".join(problems))
    return outcomes


def list_reports(
    engine: Engine, frequency: str | None = None, enabled: bool | None = None
) -> list[ReportConfig]:
    query = select(report_configs).order_by(report_configs.c.id)
    if frequency is not None:
        query = query.where(report_configs.c.frequency == frequency)
    if enabled is not None:
        query = query.where(report_configs.c.enabled == enabled)
    with engine.connect() as conn:
        return [_report_from_row(r) for r in conn.execute(query)]


def report_row_summary(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            select(
                report_configs.c.id, report_configs.c.name, report_configs.c.organization_id,
                report_configs.c.report_type, report_configs.c.frequency,
                report_configs.c.enabled, report_configs.c.version,
                report_configs.c.updated_at,
            ).order_by(report_configs.c.id)
        ).mappings().all()
    return [dict(r) for r in rows]


def get_report(engine: Engine, report_id: str) -> ReportConfig:
    with engine.connect() as conn:
        row = conn.execute(select(report_configs).where(report_configs.c.id == report_id)).first()
    if row is None:
        raise NotFoundError(f"report {report_id!r} does not exist")
    return _report_from_row(row)


def set_enabled(engine: Engine, report_id: str, enabled: bool) -> int:
    """Flip `enabled`; returns the new version (unchanged when already in that state)."""
    with engine.begin() as conn:
        row = conn.execute(
            select(report_configs.c.enabled, report_configs.c.version, report_configs.c.config)
            .where(report_configs.c.id == report_id)
        ).first()
        if row is None:
            raise NotFoundError(f"report {report_id!r} does not exist")
        if row.enabled == enabled:
            return row.version
        config = dict(row.config, enabled=enabled)
        conn.execute(
            update(report_configs)
            .where(report_configs.c.id == report_id)
            .values(enabled=enabled, config=config, version=row.version + 1, updated_at=utcnow())
        )
        return row.version + 1


def delete_report(engine: Engine, report_id: str, actor: str | None = None) -> None:
    """Remove the configuration; an unschedule request cancels its queued runs.

    Dagster run history and the delivery ledger stay: they are the audit record.
    """
    with engine.begin() as conn:
        result = conn.execute(delete(report_configs).where(report_configs.c.id == report_id))
        if result.rowcount == 0:
            raise NotFoundError(f"report {report_id!r} does not exist")
        _insert_request(conn, report_id, "unschedule", None, actor)


# ---------------------------------------------------------------- schedule requests


def check_request(report_id: str, action: str, period: str | None, actor: str | None) -> None:
    """Validate a schedule request by the model the sensor applies (ValueError naming the field)."""
    try:
        ScheduleRequest(report_id=report_id, action=action, period=period, requested_by=actor)
    except ValidationError as exc:
        raise ValueError("; ".join(
            f"schedule request field '{'.'.join(map(str, e['loc']))}': "
            f"{e['msg'].removeprefix('Value error, ')}" for e in exc.errors()
        )) from None


def _insert_request(
    conn: Connection, report_id: str, action: str, period: str | None, actor: str | None
) -> int:
    check_request(report_id, action, period, actor)
    result = conn.execute(
        insert(schedule_requests).values(
            report_id=report_id, action=action, period=period, requested_by=actor,
            requested_at=utcnow(), status="pending",
        )
    )
    return int(result.inserted_primary_key[0])


def request(
    engine: Engine, report_id: str, action: str, period: str | None = None,
    actor: str | None = None,
) -> int:
    """Queue a schedule request for the schedule-requests sensor; returns its id."""
    check_request(report_id, action, period, actor)
    with engine.begin() as conn:
        exists = conn.execute(
            select(report_configs.c.id).where(report_configs.c.id == report_id)
        ).first()
        if exists is None:
            raise NotFoundError(f"report {report_id!r} does not exist")
        return _insert_request(conn, report_id, action, period, actor)


def list_requests(engine: Engine, status: str | None = None) -> list[dict[str, Any]]:
    query = select(schedule_requests).order_by(schedule_requests.c.id)
    if status:
        query = query.where(schedule_requests.c.status == status)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]
