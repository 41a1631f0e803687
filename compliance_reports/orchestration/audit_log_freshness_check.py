"""audit_log observed: row count and newest event per organization, and a check that warns
when an organization's log goes silent (COMPLIANCE_AUDIT_SILENCE_HOURS, default 24)."""

from datetime import datetime, timedelta, timezone

from dagster import (
    AssetCheckExecutionContext,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetObservation,
    MetadataValue,
    TableColumn,
    TableRecord,
    TableSchema,
    asset_check,
)

from compliance_reports.audit.activity import organization_activity, silent_organizations
from compliance_reports.orchestration.audit_log_asset import audit_log
from compliance_reports.orchestration.resources import ComplianceDatabase
from compliance_reports.settings import load_settings

ACTIVITY_SCHEMA = TableSchema(
    columns=[
        TableColumn("organization_id", "string"),
        TableColumn("rows", "int"),
        TableColumn("newest_event_utc", "string"),
        TableColumn("silent_hours", "float"),
    ]
)


@asset_check(
    asset=audit_log.key,
    name="organizations_not_silent",
    description=(
        "Warns when an organization's newest audit event is older than "
        "COMPLIANCE_AUDIT_SILENCE_HOURS (default 24): its log stopped arriving, so its next "
        "reports would cover an empty window. Also records audit_log's row count and newest "
        "event per organization as an observation."
    ),
)
def organizations_not_silent(context: AssetCheckExecutionContext, compliance_db: ComplianceDatabase):
    now = datetime.now(timezone.utc)
    hours = load_settings().audit_silence_hours
    activity = organization_activity(compliance_db.audit_engine())
    silent = silent_organizations(activity, now, timedelta(hours=hours))
    table = MetadataValue.table(
        records=[
            TableRecord({
                "organization_id": a.organization_id,
                "rows": a.rows,
                "newest_event_utc": a.newest.isoformat(timespec="seconds"),
                "silent_hours": round(a.silent_for(now).total_seconds() / 3600, 1),
            })
            for a in activity
        ],
        schema=ACTIVITY_SCHEMA,
    )
    newest = max((a.newest for a in activity), default=None)
    context.op_execution_context.log_event(
        AssetObservation(
            asset_key=audit_log.key,
            metadata={
                "dagster/row_count": MetadataValue.int(sum(a.rows for a in activity)),
                "organizations": MetadataValue.int(len(activity)),
                "newest_event_utc": newest.isoformat(timespec="seconds") if newest else "none",
                "per_organization": table,
            },
        )
    )
    if not activity:
        return AssetCheckResult(passed=False, severity=AssetCheckSeverity.WARN,
                                description="audit_log holds no event of any organization",
                                metadata={"silence_limit_hours": hours})
    return AssetCheckResult(
        passed=not silent,
        severity=AssetCheckSeverity.WARN,
        description=(
            f"silent for more than {hours} h: " + ", ".join(
                f"{a.organization_id} (newest {a.newest.isoformat(timespec='minutes')})" for a in silent)
            if silent else f"every organization logged within the last {hours} h"
        ),
        metadata={
            "silence_limit_hours": hours,
            "silent_organizations": MetadataValue.json([a.organization_id for a in silent]),
            "per_organization": table,
        },
    )
