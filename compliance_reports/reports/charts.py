"""The charts of a report, as data: ``chart`` sections (see ``document``) that the exporters draw.

Time series come from ONE grouped statement per report: events of the scope counted per UTC
clock hour (``utc_hour_start``), with the type's measures as conditional sums (failures, failed
logins, after-hours PHI access). Python then assigns each hour to its local day (or local hour
for a daily report) in the report's timezone, so every day of the window has a bar, including
days without events, and DST days are right. In a timezone whose offset is not a whole number
of hours, an hour is assigned by its start.

Charts per report type:
- every type but integrity: activity per day (per hour for daily reports), failures apart;
- HIPAA: failed logins and after-hours PHI access over time, top principals by PHI access;
- GDPR: data-subject requests still open at the end of the period by age, against the deadline;
- general compliance: top principals;
- integrity: the organization's rows per day (all rows, whatever the criteria), days without
  rows marked: the window's coverage by the log that was verified.

Each chart carries alt text stating what it shows and its largest values, so a reader without
the picture (screen reader, JSON consumer) gets the same message.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, case, func, literal, select
from sqlalchemy.sql.elements import ColumnElement

from compliance_reports.audit.action_categories import pattern_condition
from compliance_reports.db.schema import audit_log
from compliance_reports.reports import document as rd
from compliance_reports.reports.common import ReportContext, principal_label
from compliance_reports.reports.sql_constructs import utc_hour, utc_hour_start

c = audit_log.c
TOP_PRINCIPALS = 10
DSR_OPEN_LIMIT = 10_000


def _sum(condition: ColumnElement) -> ColumnElement:
    return func.coalesce(func.sum(case((condition, literal(1)), else_=literal(0))), 0)


def timeline(
    ctx: ReportContext, measures: Sequence[tuple[str, ColumnElement]], *, criteria: bool = True
) -> tuple[list[str], dict[str, list[int]]]:
    """Local buckets of the window (days, or hours for a daily report) and, per measure (plus
    "events"), the count in each bucket: one grouped statement over the window."""
    hour = utc_hour_start(c.timestamp)
    cols = [utc_hour(hour).label("hour"), func.count().label("events")]
    cols += [_sum(cond).label(name) for name, cond in measures]
    stmt = ctx.statement(lambda where: select(*cols).select_from(audit_log).where(*where).group_by(hour),
                         criteria=criteria)
    labels, index_of = _buckets(ctx)
    names = ["events", *(n for n, _ in measures)]
    series = {name: [0] * len(labels) for name in names}
    for row in ctx.conn.execute(stmt):
        start = datetime.strptime(row.hour, "%Y-%m-%d %H").replace(tzinfo=timezone.utc)
        at = index_of(start)
        if at is None:
            continue
        for name in names:
            series[name][at] += int(row._mapping[name] or 0)
    return labels, series


def _buckets(ctx: ReportContext):
    window, zone = ctx.window, ctx.zone
    if window.frequency == "daily":
        labels, starts = [], []
        cursor = window.start_utc
        while cursor < window.end_utc:
            labels.append(cursor.astimezone(zone).strftime("%H:%M"))
            starts.append(cursor)
            cursor += timedelta(hours=1)

        def index_of(instant: datetime) -> int | None:
            offset = int((instant - window.start_utc) // timedelta(hours=1))
            return offset if 0 <= offset < len(starts) else None
        return labels, index_of
    first, last = window.start_local.date(), window.end_local.date()
    days = [first + timedelta(days=n) for n in range((last - first).days)]
    position = {day: n for n, day in enumerate(days)}

    def index_of(instant: datetime) -> int | None:
        return position.get(instant.astimezone(zone).date())
    return [_day_label(d, weekday=len(days) <= 7) for d in days], index_of


# English names, whatever the process locale (strftime's %a and %b follow it).
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _day_label(day, *, weekday: bool) -> str:
    label = f"{day.day:02d} {_MONTHS[day.month - 1]}"
    return f"{_WEEKDAYS[day.weekday()]} {label}" if weekday else label


def _unit(ctx: ReportContext) -> str:
    return "hour" if ctx.window.frequency == "daily" else "day"


def _peak(labels: list[str], values: list[int]) -> str:
    if not values or max(values) == 0:
        return "none"
    top = max(values)
    return f"{top:,} ({labels[values.index(top)]})"


def activity_chart(ctx: ReportContext, labels: list[str], series: dict[str, list[int]],
                   *, scope_text: str = "events") -> dict:
    events, fails = series["events"], series["failures"]
    unit = _unit(ctx)
    ok = [e - f for e, f in zip(events, fails)]
    alt = (f"Bar chart of {scope_text} per {unit} over the period, failures stacked in red: "
           f"{sum(events):,} in total, {sum(fails):,} failed; busiest {unit} "
           f"{_peak(labels, events)}; most failures {_peak(labels, fails)}.")
    return rd.chart(
        "chart_activity", f"Activity per {unit}", "stacked_bar", labels,
        [{"name": "Other outcomes", "role": "main", "values": ok},
         {"name": "Failures", "role": "failure", "values": fails}],
        alt=alt, x_label=f"Local {unit} ({ctx.window.timezone})", y_label="Events")


def over_time_chart(ctx: ReportContext, section_id: str, title: str, labels: list[str],
                    values: list[int], what: str, role: str = "failure") -> dict:
    unit = _unit(ctx)
    alt = (f"Bar chart of {what} per {unit}: {sum(values):,} in total, "
           f"{sum(1 for v in values if v)} of {len(values)} {unit}s with any; highest "
           f"{_peak(labels, values)}.")
    return rd.chart(section_id, title, "bar", labels,
                    [{"name": what[:1].upper() + what[1:], "role": role, "values": values}],
                    alt=alt, x_label=f"Local {unit} ({ctx.window.timezone})", y_label="Events")


def top_principals_chart(ctx: ReportContext, rows: list[dict[str, Any]], what: str) -> dict:
    """``rows``: [{"principal_id", "events", "failures"}] by events desc, already pseudonymised."""
    rows = rows[:TOP_PRINCIPALS]
    names = [principal_label(r["principal_id"]) for r in rows]
    fails = [int(r.get("failures") or 0) for r in rows]
    ok = [int(r["events"]) - f for r, f in zip(rows, fails)]
    listed = "; ".join(f"{n} {int(r['events']):,}" for n, r in zip(names, rows))
    alt = f"Horizontal bar chart of the top {len(rows)} principals by {what}: {listed or 'none'}."
    return rd.chart("chart_top_principals", f"Top principals by {what}", "barh", names,
                    [{"name": "Other outcomes", "role": "main", "values": ok},
                     {"name": "Failures", "role": "failure", "values": fails}],
                    alt=alt, x_label="Events", y_label="Principal")


def top_principals(ctx: ReportContext, *extra: ColumnElement) -> list[dict[str, Any]]:
    if ctx.chart_principals is not None:  # counted by the builder already
        rows = ctx.chart_principals[:TOP_PRINCIPALS]
    else:
        rows, _ = ctx.grouped(c.principal_id, *extra, measures=[("failures", _sum(c.status == "failure"))],
                              limit=TOP_PRINCIPALS)
    return [{"principal_id": ctx.pseudo(r["key"]), "events": r["events"],
             "failures": int(r["failures"] or 0)} for r in rows]


def dsr_age_chart(ctx: ReportContext, received: ColumnElement, completed: ColumnElement,
                  request_id: ColumnElement, deadline_days: int) -> dict:
    """Requests received before the end of the period (at any time) and not completed by then,
    by age at the end of the period in weekly bins, the deadline's bin boundary marked.

    Two plain statements (receipts, completions before the end) matched on the request id in
    Python: a correlated NOT EXISTS on a JSON field is slow on SQLite, and requests are few."""
    end = ctx.window.end_utc
    done = set(ctx.conn.execute(
        select(request_id).where(*ctx.scope(completed, lower_bound=False, criteria=False))
        .distinct()).scalars())
    stamps = [ts for rid, ts in ctx.conn.execute(
        select(request_id, c.timestamp).where(*ctx.scope(received, lower_bound=False))
        .order_by(c.timestamp, c.id).limit(DSR_OPEN_LIMIT)) if rid not in done]
    ages = [(end - ts) / timedelta(days=1) for ts in stamps]
    edges = sorted({0, 7, 14, 21, deadline_days, deadline_days + 14, deadline_days + 30})
    labels = [f"{a}-{b} d" for a, b in zip(edges, edges[1:])] + [f"over {edges[-1]} d"]
    within = [0] * len(labels)
    late = [0] * len(labels)
    for age in ages:
        at = next((i for i, b in enumerate(edges[1:]) if age < b), len(labels) - 1)
        (late if age > deadline_days else within)[at] += 1
    alt = (f"Bar chart of the {len(ages):,} data-subject requests open at the end of the period "
           f"by age: {sum(within):,} within the {deadline_days}-day deadline, {sum(late):,} past "
           "it (in red).")
    return rd.chart(
        "chart_dsr_age", "Open data-subject requests by age", "stacked_bar", labels,
        [{"name": "Within the deadline", "role": "main", "values": within},
         {"name": "Past the deadline", "role": "failure", "values": late}],
        alt=alt, x_label="Age at the end of the period", y_label="Requests",
        reference={"label": f"Deadline ({deadline_days} days)", "at": labels[edges.index(deadline_days)]})


def coverage_chart(ctx: ReportContext, labels: list[str], rows: list[int]) -> dict:
    unit = _unit(ctx)
    empty = [lab for lab, v in zip(labels, rows) if v == 0]
    alt = (f"Bar chart of the organization's audit-log rows per {unit}: {sum(rows):,} rows, "
           f"{len(empty)} of {len(labels)} {unit}s without rows"
           + (f" ({', '.join(empty[:10])}{', ...' if len(empty) > 10 else ''})" if empty else "")
           + ".")
    return rd.chart("chart_coverage", f"Audit-log rows per {unit}", "bar", labels,
                    [{"name": "Rows", "role": "main", "values": rows}],
                    alt=alt, x_label=f"Local {unit} ({ctx.window.timezone})", y_label="Rows")


def report_charts(ctx: ReportContext) -> list[dict]:
    """The chart sections of the report type of ``ctx``."""
    kind = ctx.report.report_type
    failed = c.status == "failure"
    if kind == "integrity_verification":
        labels, series = timeline(ctx, [], criteria=False)
        return [coverage_chart(ctx, labels, series["events"])]
    if kind == "hipaa_audit_trail":
        from compliance_reports.reports.hipaa import after_hours_intervals, in_intervals

        opts = ctx.options
        phi = c.data_classification == "PHI"
        after = in_intervals(after_hours_intervals(ctx.window, opts.after_hours_start,
                                                   opts.after_hours_end, opts.weekend_is_after_hours))
        labels, series = timeline(ctx, [
            ("failures", failed),
            ("failed_logins", and_(ctx.category("login"), failed)),
            ("after_hours", and_(phi, after)),
        ])
        return [
            activity_chart(ctx, labels, series),
            over_time_chart(ctx, "chart_failed_logins", "Failed logins over time", labels,
                            series["failed_logins"], "failed logins"),
            over_time_chart(ctx, "chart_after_hours", "After-hours PHI access over time", labels,
                            series["after_hours"], "after-hours PHI access events", role="warning"),
            top_principals_chart(ctx, top_principals(ctx, phi), "PHI access events"),
        ]
    labels, series = timeline(ctx, [("failures", failed)])
    charts = [activity_chart(ctx, labels, series)]
    if kind == "general_compliance":
        charts.append(top_principals_chart(ctx, top_principals(ctx), "events"))
    elif kind == "gdpr_processing_activities":
        from compliance_reports.reports import gdpr

        dsr = ctx.category("data_subject_request", any_time=True)  # requests received before the window
        request_id = gdpr.request_id()
        received = and_(dsr, pattern_condition(c.action, gdpr.DSR_RECEIVED), request_id.is_not(None))
        completed = and_(dsr, pattern_condition(c.action, gdpr.DSR_COMPLETED), request_id.is_not(None))
        charts.append(dsr_age_chart(ctx, received, completed, request_id,
                                    ctx.options.dsr_deadline_days))
    return charts
