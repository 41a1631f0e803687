"""General compliance summary: what happened in the period, and how it compares to the last one.

Sections: scope, totals, change against the previous period, by status, by data classification,
by action category, by resource type, top actions, integrity. The previous period is the one
before this period key in the same frequency and timezone; its figures come from the same SQL
statements with the previous window's bounds.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select

from compliance_reports.db.schema import audit_log
from compliance_reports.periods import period_window, previous_period_key
from compliance_reports.reports import document as rd
from compliance_reports.reports.comparison import change
from compliance_reports.reports.common import (
    ReportContext,
    category_title,
    distinct_count,
    event_time,
    failures,
    int_or_zero,
    integrity_facts_section,
    integrity_summary,
    rate,
    scope_section,
    sort_key,
    successes,
)
from compliance_reports.reports.types import Body

c = audit_log.c
MAX_GROUPS = 1000


def totals(ctx: ReportContext, start: datetime, end: datetime) -> dict[str, Any]:
    row = ctx.conn.execute(
        select(
            func.count().label("events"),
            distinct_count(c.principal_id).label("principals"),
            successes(audit_log).label("successes"),
            failures(audit_log).label("failures"),
            func.min(c.timestamp).label("first"),
            func.max(c.timestamp).label("last"),
        ).where(*ctx.scope(start=start, end=end))
    ).one()
    resources = ctx.conn.execute(
        select(func.count()).select_from(
            select(c.target_resource_type, c.target_resource_id)
            .where(*ctx.scope(c.target_resource_id.is_not(None), start=start, end=end))
            .distinct()
            .subquery()
        )
    ).scalar_one()
    events = row.events
    fails = int_or_zero(row.failures)
    return {
        "events": events,
        "distinct_principals": row.principals,
        "distinct_resources": resources,
        "successes": int_or_zero(row.successes),
        "failures": fails,
        "attempts": events - int_or_zero(row.successes) - fails,
        "failure_rate": rate(fails, events),
        "first_event": event_time(row.first),
        "last_event": event_time(row.last),
    }


def status_counts(ctx: ReportContext, start: datetime, end: datetime) -> dict[str | None, int]:
    rows, _ = ctx.grouped(c.status, start=start, end=end)
    return {r["key"]: r["events"] for r in rows}


def build(ctx: ReportContext) -> Body:
    window = ctx.window
    top_n = ctx.options.top_n
    now = totals(ctx, window.start_utc, window.end_utc)

    prev_key = previous_period_key(window.period_key, window.frequency)
    prev_window = period_window(prev_key, window.frequency, window.timezone)
    prev = totals(ctx, prev_window.start_utc, prev_window.end_utc)
    if ctx.report.criteria.verified_only:
        ctx.scope_notes.append(
            "For the previous period, verified_only excludes rows without a hash only "
            "(hashes are recomputed for this period's window)."
        )

    by_status = status_counts(ctx, window.start_utc, window.end_utc)
    prev_status = status_counts(ctx, prev_window.start_utc, prev_window.end_utc)
    status_rows = []
    for status in sorted(set(by_status) | set(prev_status), key=sort_key):
        ch = change(by_status.get(status, 0), prev_status.get(status, 0))
        status_rows.append({"status": status, "events": ch["current"], "previous": ch["previous"],
                            "change": ch["change"], "change_pct": ch["change_pct"]})

    by_class, _ = ctx.grouped(c.data_classification)
    by_type, n_types = ctx.grouped(c.target_resource_type, limit=MAX_GROUPS)
    by_action, n_actions = ctx.grouped(
        c.action, measures=[("failures", failures(audit_log))], limit=MAX_GROUPS
    )
    by_category = ctx.grouped_by_category(
        measures=[("failures", lambda t: failures(t)),
                  ("principals", lambda t: distinct_count(t.c.principal_id))]
    )
    total_change = change(now["events"], prev["events"])

    sections = [
        scope_section(ctx),
        rd.facts("totals", "Totals", [
            ("Events", now["events"]),
            ("Distinct principals", now["distinct_principals"]),
            ("Distinct resources", now["distinct_resources"]),
            ("Successes", now["successes"]),
            ("Failures", now["failures"]),
            ("Attempts (no outcome yet)", now["attempts"]),
            ("Failure rate", now["failure_rate"]),
            ("First event (UTC)", now["first_event"]),
            ("Last event (UTC)", now["last_event"]),
        ]),
        rd.facts("change", "Change against the previous period", [
            ("Previous period", prev_key),
            ("Events in the previous period", prev["events"]),
            ("Change in events", total_change["change"]),
            ("Change in events (%)", total_change["change_pct"]),
            ("Failures in the previous period", prev["failures"]),
            ("Failure rate in the previous period", prev["failure_rate"]),
            ("Distinct principals in the previous period", prev["distinct_principals"]),
        ]),
        rd.table(
            "by_status", "Events by status",
            [("status", "Status"), ("events", "Events"), ("previous", "Previous period"),
             ("change", "Change"), ("change_pct", "Change (%)")],
            status_rows,
        ),
        rd.table(
            "by_classification", "Events by data classification",
            [("data_classification", "Classification"), ("events", "Events")],
            [{"data_classification": r["key"], "events": r["events"]} for r in by_class],
        ),
        rd.table(
            "by_category", "Events by action category",
            [("category", "Category"), ("title", "Description"), ("events", "Events"),
             ("failures", "Failures"), ("principals", "Distinct principals")],
            [{"category": r["category"], "title": category_title(r["category"]),
              "events": r["events"], "failures": int_or_zero(r["failures"]),
              "principals": r["principals"]} for r in by_category],
        ),
        rd.table(
            "by_resource_type", "Events by resource type",
            [("resource_type", "Resource type"), ("events", "Events")],
            [{"resource_type": r["key"], "events": r["events"]} for r in by_type],
            total_rows=n_types,
        ),
        rd.table(
            "top_actions", f"Top {top_n} actions",
            [("action", "Action"), ("events", "Events"), ("failures", "Failures"),
             ("share", "Share of events")],
            [{"action": r["key"], "events": r["events"], "failures": int_or_zero(r["failures"]),
              "share": rate(r["events"], now["events"])} for r in by_action[:top_n]],
            total_rows=n_actions,
            note=f"{n_actions} distinct actions in the period." if n_actions > top_n else None,
        ),
        integrity_facts_section(ctx),
    ]
    summary = [
        ("Events", now["events"]),
        ("Distinct principals", now["distinct_principals"]),
        ("Failure rate", now["failure_rate"]),
        ("Change against previous period (%)", total_change["change_pct"]),
        ("Integrity", ctx.integrity.verdict),
    ]
    data = {
        "totals": now,
        "previous_period": {"period": prev_key, **prev},
        "change": total_change,
        "by_status": status_rows,
        "by_classification": {str(r["key"]) if r["key"] is not None else "(none)": r["events"]
                              for r in by_class},
        "by_category": [{"category": r["category"], "events": r["events"],
                         "failures": int_or_zero(r["failures"]), "principals": r["principals"]}
                        for r in by_category],
        "by_resource_type": [{"resource_type": r["key"], "events": r["events"]} for r in by_type],
        "by_action": [{"action": r["key"], "events": r["events"],
                       "failures": int_or_zero(r["failures"])} for r in by_action],
        "distinct_actions": n_actions,
        "integrity": integrity_summary(ctx.integrity),
    }
    return Body(summary=summary, sections=sections, data=data)
