"""Retention: remove expired artifacts and stored deliveries, and record each removal.

The delivery ledger is never touched: it is the proof of what was delivered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Engine, insert

from compliance_reports.db.schema import retention_log
from compliance_reports.delivery.storage_channel import remove_expired


@dataclass
class RetentionResult:
    artifacts: list[str] = field(default_factory=list)
    destination_objects: list[str] = field(default_factory=list)
    dagster_runs: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "artifacts": len(self.artifacts),
            "destination_objects": len(self.destination_objects),
            "dagster_runs": len(self.dagster_runs),
        }


def record(engine: Engine, kind: str, locations: list[str], now: datetime, run_id: str | None) -> None:
    if not locations:
        return
    with engine.begin() as conn:
        conn.execute(
            insert(retention_log),
            [{"removed_at": now, "kind": kind, "location": loc, "run_id": run_id} for loc in locations],
        )


def purge_files(
    engine: Engine,
    store,
    storage_destinations: list,
    now: datetime,
    artifact_retention_days: int,
    run_id: str | None = None,
) -> RetentionResult:
    """Delete artifacts older than the retention period and expired objects of storage
    destinations that set retention_days; every removal is written to retention_log."""
    result = RetentionResult()
    result.artifacts = store.delete_older_than(now - timedelta(days=artifact_retention_days))
    record(engine, "artifact", result.artifacts, now, run_id)
    for destination in storage_destinations:
        removed = remove_expired(destination, now)
        result.destination_objects.extend(f"{destination.name}:{key}" for key in removed)
    record(engine, "destination_object", result.destination_objects, now, run_id)
    return result
