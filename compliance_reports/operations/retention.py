"""Retention: remove expired artifacts and stored deliveries, and record each removal.

Only files this project wrote and recorded in the file index (`stored_files`) are ever
removed, and only while they still hold the content recorded when they were written: nothing
is found by walking a folder or listing a bucket, so a file someone else put next to ours
(a key, a source file) is never touched. The delivery ledger is never touched either: it is
the proof of what was delivered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Callable

from sqlalchemy import Engine, insert

from compliance_reports.artifacts.file_index import ARTIFACT, FileIndex
from compliance_reports.db.schema import retention_log
from compliance_reports.delivery.storage_channel import remove_expired


@dataclass
class RetentionResult:
    artifacts: list[str] = field(default_factory=list)
    destination_objects: list[str] = field(default_factory=list)
    dagster_runs: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {
            "artifacts": len(self.artifacts),
            "destination_objects": len(self.destination_objects),
            "dagster_runs": len(self.dagster_runs),
            "problems": len(self.problems),
        }


def record(engine: Engine, kind: str, locations: list[str], now: datetime, run_id: str | None) -> None:
    if not locations:
        return
    with engine.begin() as conn:
        conn.execute(
            insert(retention_log),
            [{"removed_at": now, "kind": kind, "location": loc, "run_id": run_id} for loc in locations],
        )


def remove_expired_artifacts(engine: Engine, store, cutoff: datetime, log: Callable[[str], None]) -> list[str]:
    """Recorded artifacts stored before `cutoff`, removed through the store; their locations."""
    index = FileIndex(engine, ARTIFACT)
    removed = []
    for entry in index.expired(cutoff):
        try:
            outcome = store.remove_recorded(entry)
        except ValueError as exc:  # not a location of the configured store (it changed since)
            log(f"artifact {entry.location}: kept: {exc}")
            continue
        if outcome == "removed":
            removed.append(entry.location)
        elif outcome == "changed":
            log(f"artifact {entry.location}: kept: its content is no longer the one stored")
        index.forget(entry)
    return removed


def purge_files(
    engine: Engine,
    store,
    storage_destinations: list,
    now: datetime,
    artifact_retention_days: int,
    run_id: str | None = None,
    log: Callable[[str], None] = lambda message: None,
) -> RetentionResult:
    """Delete recorded artifacts older than the retention period and recorded files of storage
    destinations older than their retention_days; every removal is written to retention_log.
    A destination that fails is reported in `problems` and does not stop the others."""
    result = RetentionResult()
    result.artifacts = remove_expired_artifacts(engine, store, now - timedelta(days=artifact_retention_days), log)
    record(engine, "artifact", result.artifacts, now, run_id)
    for destination in storage_destinations:
        try:
            removed = remove_expired(engine, destination, now, log)
        except Exception as exc:  # noqa: BLE001 - one unreachable bucket must not stop retention
            result.problems.append(f"destination {destination.name}: {type(exc).__name__}: {exc}")
            log(result.problems[-1])
            continue
        result.destination_objects.extend(f"{destination.name}:{location}" for location in removed)
    record(engine, "destination_object", result.destination_objects, now, run_id)
    return result
