"""What every report builder shares: the query scope, SQL helpers, formatting, common sections.

Scope rule: every statement a builder runs is built from ``ReportContext.scope()``, which always
holds ``organization_id = :org`` and, unless a section documents otherwise, the window bounds
``timestamp >= :start AND timestamp < :end``, plus the report's criteria as bound parameters.
Aggregation happens in SQL (SQLAlchemy Core); only grouped results or bounded evidence lists
(with a LIMIT and a separate total count) come back to Python. Statements in the window scope
go through ``ReportContext.statement`` and read the window, copied once per build into a
temporary table (``window_rows``), instead of ``audit_log``.

Portability: the same statements run on SQLite and PostgreSQL and give identical documents.
Three things differ between the two and are handled here:
- ordering of strings: PostgreSQL sorts by the database collation, SQLite by bytes; ``binary``
  adds ``COLLATE "C"`` on PostgreSQL so both sort by bytes (= Python's code-point order), and
  NULLs are ordered explicitly (``nulls_last_key``);
- LIKE case sensitivity: see ``action_categories`` (both sides lower-cased);
- hour buckets: grouped by ``utc_hour_start`` and labelled by ``utc_hour``: ``substr(ts, 1, 13)``
  on SQLite (timestamps are stored as ``YYYY-MM-DD HH:MM:SS.ffffff`` UTC text), and on PostgreSQL
  ``date_trunc('hour', ts AT TIME ZONE 'UTC')`` formatted per group with ``to_char(...,
  'YYYY-MM-DD HH24')``: both give ``2026-10-25 01``.
JSON fields of ``details`` are read with SQLAlchemy's JSON indexing
(``details["gdpr_context"]["legal_basis"].as_string()``), which renders ``JSON_EXTRACT`` on
SQLite and ``->``/``->>`` on PostgreSQL (JSONB). Numeric JSON fields (``record_count``) are read
with ``as_float()`` and must be JSON numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, and_, case, func, literal, select
from sqlalchemy.sql.elements import ColumnElement

from compliance_reports.audit.action_categories import (
    CATEGORY_TITLES,
    DEFAULT_CATEGORIES,
    action_map,
    category_condition,
    mapped_case,
    mapped_condition,
    pattern_condition,
)
from compliance_reports.audit.event_stream import Redactor, StreamOutcome
from compliance_reports.audit.hashing import iso_millis
from compliance_reports.audit.integrity import IntegrityResult
from compliance_reports.config.models import Criteria, ReportConfig
from compliance_reports.db.schema import audit_log
from compliance_reports.periods import Window
from compliance_reports.reports import document as rd
from compliance_reports.reports.sql_constructs import binary
from compliance_reports.reports.window_rows import NotInWindowRows, WindowRows

EVIDENCE_LIMIT = 10        # event ids attached to one finding
LIST_LIMIT = 200           # rows of an evidence list section (disclosures, breaches, ...)
FLAGGED_LIMIT = 50         # principals listed per anomaly

def nulls_last_key(expr: ColumnElement) -> ColumnElement:
    return case((expr.is_(None), literal(1)), else_=literal(0))


def sort_key(value: Any) -> tuple:
    """Python order matching ``nulls_last_key, binary(...)``: None last, then code points."""
    return (value is None, "" if value is None else str(value))


# ------------------------------------------------------------------------- criteria


def criteria_condition(table, criteria: Criteria) -> ColumnElement | None:
    """The report's criteria (all but verified_only) as one SQL condition with bound parameters.

    ``actions`` entries are fnmatch patterns matched like the action categories (case-insensitive,
    ``*`` and ``?``); an entry without wildcards matches that action exactly. The other lists are
    exact ``IN`` matches. An empty list does not filter.
    """
    col = table.c
    conds: list[ColumnElement] = []
    if criteria.principal_ids:
        conds.append(col.principal_id.in_(criteria.principal_ids))
    if criteria.actions:
        conds.append(pattern_condition(col.action, criteria.actions))
    if criteria.data_classifications:
        conds.append(col.data_classification.in_(criteria.data_classifications))
    if criteria.statuses:
        conds.append(col.status.in_(criteria.statuses))
    if criteria.resource_types:
        conds.append(col.target_resource_type.in_(criteria.resource_types))
    if not conds:
        return None
    return and_(*conds)


def describe_criteria(criteria: Criteria) -> str:
    parts = []
    for name in ("principal_ids", "actions", "data_classifications", "statuses", "resource_types"):
        values = getattr(criteria, name)
        if values:
            parts.append(f"{name.replace('_', ' ')}: {', '.join(values)}")
    if criteria.verified_only:
        parts.append("only events whose hash verifies")
    return "; ".join(parts) if parts else "all events of the organization"


# ------------------------------------------------------------------------- context


# ``ReportContext.scope``'s keyword defaults: the window scope the window table holds.
_WINDOW_SCOPE: dict[str, Any] = {"table": audit_log, "start": None, "end": None, "lower_bound": True,
                                 "criteria": True}


@dataclass
class ReportContext:
    conn: Connection
    app_engine: Engine
    report: ReportConfig
    window: Window
    categories: dict[str, tuple[str, ...]]
    stream: StreamOutcome
    integrity: IntegrityResult
    generated_at: datetime
    scope_notes: list[str] = field(default_factory=list)
    redactor: Redactor | None = None
    # The top-principals chart's principals ({key, events, failures}, by events desc then key),
    # when the builder counted them in the same scope anyway: the chart then sends no statement.
    chart_principals: list[dict[str, Any]] | None = None
    _window_actions: dict[str, str] | None = field(default=None, init=False, repr=False)
    _category_case: ColumnElement | None = field(default=None, init=False, repr=False)
    _window_rows: WindowRows | None = field(default=None, init=False, repr=False)
    _flags: dict[str, ColumnElement] = field(default_factory=dict, init=False, repr=False)

    def pseudo(self, value: str | None) -> str | None:
        """An identifier as the document shows it: the export pseudonym when redacting."""
        return self.redactor.pseudonym(value) if self.redactor is not None else value

    @property
    def org(self) -> str:
        return self.report.organization_id

    @property
    def options(self):
        return self.report.options

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.window.timezone)

    def scope(
        self,
        *extra: ColumnElement,
        table=audit_log,
        start: datetime | None = None,
        end: datetime | None = None,
        lower_bound: bool = True,
        criteria: bool = True,
    ) -> list[ColumnElement]:
        """Conditions every audit query starts from: organization, window, criteria."""
        col = table.c
        start = self.window.start_utc if start is None else start
        end = self.window.end_utc if end is None else end
        conds: list[ColumnElement] = [col.organization_id == self.org, col.timestamp < end]
        if lower_bound:
            conds.append(col.timestamp >= start)
        if criteria:
            crit = criteria_condition(table, self.report.criteria)
            if crit is not None:
                conds.append(crit)
            if self.report.criteria.verified_only:
                conds += [col.hash.is_not(None), col.hash != ""]
                if self.stream.unverified_ids:
                    conds.append(col.id.not_in(self.stream.unverified_ids))
        conds.extend(extra)
        return conds

    def window_actions(self) -> dict[str, str]:
        """The organization's distinct actions in the window, each with its category, as the
        streaming pass saw them: window statements need no per-row LIKE."""
        if self._window_actions is None:
            self._window_actions = action_map(self.stream.actions, self.categories)
        return self._window_actions

    def category(self, name: str, table=audit_log, *, any_time: bool = False) -> ColumnElement:
        """The rows of action category ``name``. Through the window's action map (``action IN
        (...)``), which holds only for statements inside the window; ``any_time`` (or another
        table) gives the pattern form, for statements reaching before or after it."""
        if name not in self.categories:
            raise KeyError(f"unknown action category {name!r}")
        if any_time or table is not audit_log:
            return category_condition(table.c.action, name, self.categories)
        return mapped_condition(table.c.action, name, self.window_actions())

    def category_expr(self) -> ColumnElement:
        """The action category of a row of the window (see ``category``)."""
        if self._category_case is None:
            self._category_case = mapped_case(audit_log.c.action, self.categories, self.window_actions())
        return self._category_case

    # ----------------------------------------------------------------- the window, read once

    def statement(self, build: Callable[[list[ColumnElement]], Any], *extra: ColumnElement, **scope_kw):
        """``build(conditions)``: a statement over audit_log restricted by ``conditions``. With
        the window scope (``scope_kw`` all defaults) it reads the window table (``window_rows``)
        and gets only ``extra``; otherwise, or when it needs a column the table lacks, audit_log
        with ``scope(*extra, **scope_kw)``."""
        if unknown := set(scope_kw) - set(_WINDOW_SCOPE):
            raise TypeError(f"unknown scope argument(s): {', '.join(sorted(unknown))}")
        if all(scope_kw.get(name, default) is default for name, default in _WINDOW_SCOPE.items()):
            try:
                return self.window_rows().adapt(build(list(extra)))
            except NotInWindowRows:
                pass
        return build(self.scope(*extra, **scope_kw))

    def flag(self, name: str, condition: ColumnElement) -> ColumnElement:
        """Have the window table hold ``condition`` per row (see ``window_rows``), so window
        statements using it test a column; before the first window statement only."""
        if self._window_rows is not None:
            raise RuntimeError(f"flag {name!r} asked for after the window table was made")
        self._flags[name] = condition
        return condition

    def window_rows(self) -> WindowRows:
        if self._window_rows is None:
            self._window_rows = WindowRows.create(self.conn, self.scope(), self.category_expr(),
                                                  self._flags)
        return self._window_rows

    def close(self) -> None:
        """Drop the window table (the end of a build)."""
        if self._window_rows is not None:
            self._window_rows.drop(self.conn)
            self._window_rows = None

    # ----------------------------------------------------------------- query helpers

    def count(self, *extra: ColumnElement, **scope_kw) -> int:
        return self.conn.execute(self.statement(
            lambda where: select(func.count()).select_from(audit_log).where(*where), *extra, **scope_kw,
        )).scalar_one()

    def grouped(
        self,
        key: ColumnElement,
        *extra: ColumnElement,
        measures: Sequence[tuple[str, ColumnElement]] = (),
        limit: int | None = None,
        **scope_kw,
    ) -> tuple[list[dict[str, Any]], int]:
        """Rows {key, events, <measures>} ordered by events desc then key (bytes, NULL last),
        at most ``limit`` of them, and the total number of groups."""
        events = func.count().label("events")
        cols = [key.label("key"), events, *(m.label(n) for n, m in measures)]
        def build(where):
            stmt = select(*cols).select_from(audit_log).where(*where).group_by(key)
            if limit is None:
                return stmt
            # count(*) OVER () = the number of groups, computed before LIMIT: no second scan.
            return (stmt.add_columns(func.count().over().label("_groups"))
                    .order_by(events.desc(), nulls_last_key(key), binary(key)).limit(limit))

        rows = [dict(r._mapping) for r in self.conn.execute(self.statement(build, *extra, **scope_kw))]
        if limit is None:
            rows.sort(key=lambda r: (-r["events"], sort_key(r["key"])))
            return rows, len(rows)
        total = rows[0]["_groups"] if rows else 0
        for row in rows:
            del row["_groups"]
        return rows, total

    def grouped_multi(
        self,
        keys: Sequence[tuple[str, ColumnElement]],
        *extra: ColumnElement,
        measures: Sequence[tuple[str, ColumnElement]] = (),
        max_groups: int = 10_000,
        **scope_kw,
    ) -> list[dict[str, Any]]:
        """Counts per combination of several keys (all groups, up to ``max_groups``), ordered
        by events desc then the keys (bytes, NULL last)."""
        exprs = [e for _, e in keys]
        cols = [e.label(n) for n, e in keys]
        cols += [func.count().label("events"), *(m.label(n) for n, m in measures)]
        stmt = self.statement(
            lambda where: (select(*cols).select_from(audit_log).where(*where)
                           .group_by(*exprs).limit(max_groups)),
            *extra, **scope_kw)
        rows = [dict(r._mapping) for r in self.conn.execute(stmt)]
        rows.sort(key=lambda r: (-r["events"], *(sort_key(r[n]) for n, _ in keys)))
        return rows

    def grouped_by_category(
        self, *extra: ColumnElement, measures: Sequence[tuple[str, Any]] = ()
    ) -> list[dict[str, Any]]:
        """Counts per action category, grouped by the database: the window table's ``category``
        column, or (a measure it cannot give) the CASE in a subquery of audit_log."""
        category = self.category_expr()
        try:
            stmt = self.window_rows().adapt(
                select(category.label("category"), func.count().label("events"),
                       *(m(audit_log).label(n) for n, m in measures))
                .where(*extra).group_by(category))
        except NotInWindowRows:
            inner = select(category.label("category"), *audit_log.c).where(*self.scope(*extra)).subquery()
            cols = [inner.c.category, func.count().label("events")]
            cols += [m(inner).label(n) for n, m in measures]
            stmt = select(*cols).group_by(inner.c.category)
        rows = [dict(r._mapping) for r in self.conn.execute(stmt)]
        order = {name: i for i, name in enumerate([*self.categories, "other"])}
        rows.sort(key=lambda r: order.get(r["category"], len(order)))
        return rows

    def evidence_by_principal(
        self, principals: Iterable[str | None], *extra: ColumnElement, per: int = EVIDENCE_LIMIT
    ) -> dict[str | None, list[int]]:
        """First ``per`` event ids (chain order) of each principal among the matching events."""
        principals = list(principals)
        names = [p for p in principals if p is not None]
        found: dict[str | None, list[int]] = {}
        c = audit_log.c
        if names:
            rn = func.row_number().over(partition_by=c.principal_id, order_by=(c.timestamp, c.id))

            def build(where):
                inner = select(c.principal_id, c.id, c.timestamp, rn.label("rn")).where(*where).subquery()
                return (select(inner.c.principal_id, inner.c.id).where(inner.c.rn <= per)
                        .order_by(inner.c.timestamp, inner.c.id))

            rows = self.conn.execute(self.statement(build, *extra, c.principal_id.in_(names)))
            for principal, event_id in rows:
                found.setdefault(principal, []).append(event_id)
        if any(p is None for p in principals):
            found[None] = self.first_ids(*extra, c.principal_id.is_(None), limit=per)
        return found

    def first_ids(self, *extra: ColumnElement, limit: int = EVIDENCE_LIMIT, **scope_kw) -> list[int]:
        c = audit_log.c
        return list(self.conn.execute(self.statement(
            lambda where: select(c.id).where(*where).order_by(c.timestamp, c.id).limit(limit),
            *extra, **scope_kw,
        )).scalars())

    def event_list(
        self, *extra: ColumnElement, limit: int | None = LIST_LIMIT, columns: Sequence = (), **scope_kw
    ) -> tuple[list[Any], int]:
        """An evidence list (chain order), bounded unless ``limit`` is None, and the total number
        of matching rows. The window table picks the rows, audit_log gives their columns."""
        c = audit_log.c
        cols = columns or (
            c.id, c.timestamp, c.principal_id, c.action, c.target_resource_type,
            c.target_resource_id, c.status, c.data_classification, c.details,
        )
        if limit is None:
            ids = self.statement(lambda where: select(c.id).where(*where), *extra, **scope_kw)
            rows = self.conn.execute(
                select(*cols).where(c.id.in_(ids.scalar_subquery())).order_by(c.timestamp, c.id)
            ).all()
            return rows, len(rows)
        # count(*) OVER () = every matching row, counted before LIMIT: no second scan for the total.
        picked = self.conn.execute(self.statement(
            lambda where: (select(c.id, func.count().over().label("total")).where(*where)
                           .order_by(c.timestamp, c.id).limit(limit)),
            *extra, **scope_kw)).all()
        if not picked:
            return [], 0
        rows = self.conn.execute(
            select(*cols).where(c.id.in_([p.id for p in picked])).order_by(c.timestamp, c.id)
        ).all()
        return rows, picked[0].total

    # ----------------------------------------------------------------- formatting

    def local(self, ts: datetime | None) -> str | None:
        return ts.astimezone(self.zone).isoformat(timespec="seconds") if ts is not None else None


def iso_utc(ts: datetime | None) -> str | None:
    """ISO 8601 UTC with ``Z``: seconds, plus microseconds when there are any."""
    if ts is None:
        return None
    ts = ts.astimezone(timezone.utc)
    spec = "microseconds" if ts.microsecond else "seconds"
    return ts.replace(tzinfo=None).isoformat(timespec=spec) + "Z"


def event_time(ts: datetime | None) -> str | None:
    return iso_millis(ts) if ts is not None else None


def rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def number(value: Any) -> Any:
    """JSON numbers read as floats: whole ones become ints."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def category_title(name: str) -> str:
    return CATEGORY_TITLES.get(name, name.replace("_", " ").capitalize())


def principal_label(value: str | None) -> str:
    return value if value is not None else "(none)"


def failures(table) -> ColumnElement:
    return func.sum(case((table.c.status == "failure", 1), else_=0))


def successes(table) -> ColumnElement:
    return func.sum(case((table.c.status == "success", 1), else_=0))


def distinct_count(expr: ColumnElement) -> ColumnElement:
    return func.count(expr.distinct())


def int_or_zero(value: Any) -> int:
    return int(value or 0)


# ------------------------------------------------------------------------- common sections


def scope_section(ctx: ReportContext) -> dict:
    # Organization, period and window are the header's (page 1): not repeated here.
    window = ctx.window
    items: list[tuple[str, Any]] = [
        ("Window length (hours)", number(window.hours)),
        ("Criteria", describe_criteria(ctx.report.criteria)),
        ("Events in scope", ctx.stream.event_count),
    ]
    note = window_note(window)
    if note:
        items.append(("Note", note))
    if ctx.report.criteria.verified_only:
        items.append(("Excluded (hash does not verify)", ctx.stream.excluded_unverified))
    overridden = sorted(k for k in ctx.report.options.action_categories if k in DEFAULT_CATEGORIES)
    added = sorted(k for k in ctx.report.options.action_categories if k not in DEFAULT_CATEGORIES)
    if overridden or added:
        items.append((
            "Action categories",
            "; ".join(
                [f"{k}: {', '.join(ctx.categories[k])}" for k in overridden + added]
            ),
        ))
    description = " ".join(ctx.scope_notes) or None
    return rd.facts("scope", "Scope", items, description=description)


NOMINAL_UNITS = {"daily": "day", "weekly": "week", "monthly": "month", "quarterly": "quarter"}


def window_note(window: Window) -> str | None:
    """Set when DST makes the period longer or shorter than its calendar length."""
    nominal = (window.end_local.date() - window.start_local.date()).days * 24
    hours = window.hours
    if abs(hours - nominal) < 1e-9:
        return None
    unit = NOMINAL_UNITS.get(window.frequency, "period")
    change = "daylight saving time ended" if hours > nominal else "daylight saving time started"
    return f"This {unit} is {number(round(hours, 2))} hours long ({change})"


def integrity_facts_section(ctx: ReportContext, section_id: str = "integrity") -> dict:
    result = ctx.integrity
    items: list[tuple[str, Any]] = [
        ("Verdict", result.verdict),
        ("Reason", result.reason),
        ("Rows checked", result.rows),
        ("Verified", result.verified),
        ("Hash mismatches", result.mismatched),
        ("Rows without hash", result.unhashed),
        ("Chain breaks", result.chain_breaks),
    ]
    if result.first_break is not None:
        fb = result.first_break
        items.append(("First break", f"event {fb.event_id}: {fb.to_dict()['kind_title']} ({fb.detail})"))
    if result.previous_checkpoint:
        cp = result.previous_checkpoint
        items.append(("Previous checkpoint", f"{cp['id']} (window ending {cp['window_end']}): {cp['status']}"))
    if result.checkpoint_written:
        items.append(("Checkpoint written", f"window ending {result.checkpoint_written['window_end']}, "
                                            f"key id {result.checkpoint_written['key_id']}"))
    return rd.facts(
        section_id, "Audit-log integrity", items,
        description=("Every row of the organization in the window was re-hashed with the "
                     "source-compatible row hash and its link to the previous row checked."),
    )


def integrity_summary(result: IntegrityResult) -> dict[str, Any]:
    return {
        "verdict": result.verdict, "reason": result.reason, "rows": result.rows,
        "verified": result.verified, "mismatched": result.mismatched,
        "unhashed": result.unhashed, "chain_breaks": result.chain_breaks,
        "first_break": result.first_break.to_dict() if result.first_break else None,
    }


def evidence_table_rows(ctx: ReportContext, rows: Iterable[Any], extra=None) -> list[dict[str, Any]]:
    out = []
    for row in rows:
        item = {
            "event_id": row.id,
            "time_utc": event_time(row.timestamp),
            "time_local": ctx.local(row.timestamp),
            "principal_id": ctx.pseudo(row.principal_id),
            "action": row.action,
            "resource": resource_label(row.target_resource_type, ctx.pseudo(row.target_resource_id)),
            "status": row.status,
        }
        if extra:
            item.update(extra(row))
        out.append(item)
    return out


EVIDENCE_COLUMNS = [
    ("event_id", "Event"), ("time_utc", "Time (UTC)"), ("time_local", "Time (local)"),
    ("principal_id", "Principal"), ("action", "Action"), ("resource", "Resource"),
    ("status", "Status"),
]


def resource_label(rtype: str | None, rid: str | None) -> str | None:
    if rid and rtype and rid.startswith(rtype + "/"):
        return rid
    if rtype and rid:
        return f"{rtype}/{rid}"
    return rid or rtype


def capped_note(shown: int, total: int) -> str | None:
    if total > shown:
        return f"Showing the first {shown} of {total} rows (chain order); the event export holds all events."
    return None
