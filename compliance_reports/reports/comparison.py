"""The headline figures of the previous period, for page 1's "change against the previous period".

Every report type names the summary figures it compares (``HEADLINE_METRICS``): each is one SQL
aggregate (a count of matching events, a count of distinct values, or a ratio of two counts),
and all of a type's figures for the previous window come from ONE aggregate statement, not a
second report. The current figures are the summary's own values, so the change is always
against what page 1 shows.

The previous period is the one before this period key in the same frequency and timezone
(``periods.previous_period_key``); its window has its own length (a 31-day month after a
30-day one, a DST week), which the figures are not scaled for: they are what happened.

Scope: the same as the report's (organization, criteria), except the integrity report, whose
"Rows checked" counts every row of the organization, as its verification does. With
``verified_only`` the previous window leaves out rows without a hash only: hashes are
recomputed for the current window alone.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import String, and_, case, cast, func, literal, select
from sqlalchemy.sql.elements import ColumnElement

from compliance_reports.audit.action_categories import pattern_condition
from compliance_reports.db.schema import audit_log
from compliance_reports.periods import human_period_label, period_window, previous_period_key
from compliance_reports.reports import gdpr, hipaa
from compliance_reports.reports.common import ReportContext, iso_utc, number

c = audit_log.c


@dataclass(frozen=True)
class Metric:
    label: str                                  # the summary label it compares
    expr: ColumnElement                         # aggregate over the previous window
    denominator: ColumnElement | None = None    # a ratio: expr / denominator, 4 decimals


def change(current: Any, previous: Any) -> dict[str, Any]:
    """Current, previous, absolute change and change in % of previous (None when previous is 0
    or either value is missing)."""
    if not _is_number(current) or not _is_number(previous):
        return {"current": current, "previous": previous, "change": None, "change_pct": None}
    diff = number(round(current - previous, 4))
    pct = round(100.0 * (current - previous) / previous, 2) if previous else None
    return {"current": current, "previous": previous, "change": diff, "change_pct": pct}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _count(condition: ColumnElement | None = None) -> ColumnElement:
    if condition is None:
        return func.count()
    return func.coalesce(func.sum(case((condition, literal(1)), else_=literal(0))), 0)


def _distinct(column: ColumnElement, condition: ColumnElement) -> ColumnElement:
    return func.count(case((condition, column)).distinct())


def _hipaa(ctx: ReportContext, previous) -> list[Metric]:
    phi = c.data_classification == "PHI"
    opts = ctx.options
    after = hipaa.in_intervals(hipaa.after_hours_intervals(
        previous, opts.after_hours_start, opts.after_hours_end, opts.weekend_is_after_hours))
    return [
        Metric("PHI access events", _count(phi)),
        Metric("Principals accessing PHI", _distinct(c.principal_id, phi)),
        Metric("After-hours PHI access events", _count(and_(phi, after))),
        Metric("Failed logins", _count(and_(ctx.category("login", any_time=True), c.status == "failure"))),
        Metric("Disclosures", _count(ctx.category("disclosure", any_time=True))),
        Metric("Emergency access events", _count(ctx.category("emergency_access", any_time=True))),
    ]


def _gdpr(ctx: ReportContext, previous) -> list[Metric]:
    personal = c.data_classification.in_(gdpr.PERSONAL)
    received = and_(ctx.category("data_subject_request", any_time=True), pattern_condition(c.action, gdpr.DSR_RECEIVED))
    return [
        Metric("Personal-data processing events", _count(personal)),
        Metric("Without legal basis", _count(and_(personal, gdpr.legal_basis().is_(None)))),
        Metric("Data-subject requests received", _count(received)),
        Metric("Cross-border transfers", _count(ctx.category("transfer", any_time=True))),
        # as the breach register counts them: by breach_id, an event without one on its own
        Metric("Breaches", _distinct(func.coalesce(c.details["breach_id"].as_string(),
                                                   cast(c.id, String)), ctx.category("breach", any_time=True))),
    ]


def _general(ctx: ReportContext, previous) -> list[Metric]:
    return [
        Metric("Events", _count()),
        Metric("Distinct principals", func.count(c.principal_id.distinct())),
        Metric("Failure rate", _count(c.status == "failure"), denominator=_count()),
    ]


def _events(ctx: ReportContext, previous) -> list[Metric]:
    return [Metric("Events", _count())]


def _rows(ctx: ReportContext, previous) -> list[Metric]:
    return [Metric("Rows checked", _count())]


HEADLINE_METRICS: dict[str, Callable[[ReportContext, Any], list[Metric]]] = {
    "hipaa_audit_trail": _hipaa,
    "gdpr_processing_activities": _gdpr,
    "general_compliance": _general,
    "integrity_verification": _rows,
    "custom": _events,
}
# The integrity report counts every row of the organization, whatever the criteria.
WITHOUT_CRITERIA = {"integrity_verification"}


def compare(ctx: ReportContext, summary: list[tuple[str, Any]]) -> dict[str, Any]:
    """The comparison block of the document: the previous period's figures (one query) against
    the values of ``summary``, for the labels the report type compares."""
    window = ctx.window
    prev_key = previous_period_key(window.period_key, window.frequency)
    previous = period_window(prev_key, window.frequency, window.timezone)
    metrics = HEADLINE_METRICS[ctx.report.report_type](ctx, previous)
    columns = []
    for index, metric in enumerate(metrics):
        columns.append(metric.expr.label(f"m{index}"))
        if metric.denominator is not None:
            columns.append(metric.denominator.label(f"d{index}"))
    row = ctx.conn.execute(
        select(*columns).select_from(audit_log).where(*ctx.scope(
            start=previous.start_utc, end=previous.end_utc,
            criteria=ctx.report.report_type not in WITHOUT_CRITERIA))
    ).one()._mapping
    values = dict(summary)
    figures = []
    for index, metric in enumerate(metrics):
        prev_value = int(row[f"m{index}"] or 0)
        if metric.denominator is not None:
            whole = int(row[f"d{index}"] or 0)
            prev_value = round(prev_value / whole, 4) if whole else None
        figures.append({"label": metric.label, **change(values.get(metric.label), prev_value)})
    note = None
    if ctx.report.criteria.verified_only:
        note = ("For the previous period, verified_only leaves out rows without a hash only "
                "(hashes are recomputed for this period's window).")
    return {
        "previous_period": prev_key,
        "previous_period_label": human_period_label(prev_key, window.frequency),
        "previous_window_start_utc": iso_utc(previous.start_utc),
        "previous_window_end_utc": iso_utc(previous.end_utc),
        "note": note,
        "figures": figures,
    }


def annotate_summary(summary: list[dict[str, Any]], comparison: dict[str, Any]) -> None:
    """Adds previous, change and change_pct to the summary items the comparison covers."""
    by_label = {f["label"]: f for f in comparison["figures"]}
    for item in summary:
        figure = by_label.get(item["label"])
        if figure is not None:
            item.update(previous=figure["previous"], change=figure["change"],
                        change_pct=figure["change_pct"])
