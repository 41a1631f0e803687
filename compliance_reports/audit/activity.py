"""How alive each organization's audit log is: its row count and newest event.

One grouped query over the (organization_id, timestamp) index. An organization whose newest
event is older than the silence limit has stopped logging (or stopped being shipped here),
which is itself a finding: its next reports would cover an empty window.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, func, select

from compliance_reports.db.schema import audit_log


@dataclass(frozen=True)
class OrganizationActivity:
    organization_id: str
    rows: int
    newest: datetime  # UTC

    def silent_for(self, now: datetime) -> timedelta:
        return now - self.newest


def organization_activity(engine: Engine) -> list[OrganizationActivity]:
    """Every organization with rows in the audit log, by id."""
    query = (
        select(audit_log.c.organization_id, func.count(), func.max(audit_log.c.timestamp))
        .where(audit_log.c.organization_id.is_not(None))
        .group_by(audit_log.c.organization_id)
        .order_by(audit_log.c.organization_id)
    )
    with engine.connect() as conn:
        return [OrganizationActivity(org, int(rows), newest) for org, rows, newest in conn.execute(query)]


def silent_organizations(
    activity: list[OrganizationActivity], now: datetime, limit: timedelta
) -> list[OrganizationActivity]:
    """The organizations whose newest event is more than `limit` before `now`."""
    return [a for a in activity if a.silent_for(now) > limit]
