"""Bursts: at least N events of one principal within any 60 minutes.

The window slides: it may start at any instant, not at a clock hour, so 120 reads between
07:31 and 08:29 are one burst although no UTC hour holds more than 60 of them. A window is
half-open, [start, start + 60 min): two events exactly 60 minutes apart are not in one window.

Two steps, exact to the microsecond and identical on SQLite and PostgreSQL:

1. SQL finds the principals. With each principal's matching events in timestamp order,
   ``LEAD(timestamp, N - 1)`` is the N-th event counted from each event; when it lies less than
   60 minutes after that event, the N events fit in one window. ``shifted`` adds the span
   without floating-point time arithmetic: PostgreSQL adds an interval; SQLite (timestamps are
   ``YYYY-MM-DD HH:MM:SS.ffffff`` UTC text) shifts the whole seconds with ``strftime`` and
   appends the stored fraction, so the result compares as text exactly like the column does.
2. One streaming pass over the events of those principals (two pointers over a deque) finds each
   principal's busiest window: its first and last event, how many events it holds and the first
   event ids. The busiest window of a principal always starts at one of its events, so the
   maximum over event starts is the maximum over all starts.
"""

from __future__ import annotations

from collections import deque
from itertools import islice
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Integer, literal, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.functions import FunctionElement, func

from compliance_reports.db.schema import audit_log
from compliance_reports.reports.common import (
    EVIDENCE_LIMIT,
    ReportContext,
    binary,
    nulls_last_key,
    sort_key,
)

WINDOW = timedelta(minutes=60)
STREAM_BATCH = 10_000


class shifted(FunctionElement):
    """``timestamp + seconds`` for a UTC timestamp column, comparable with the column itself."""

    inherit_cache = True
    name = "shifted"


@compiles(shifted)
def _shifted_sqlite(element, compiler, **kw):
    ts, seconds = (compiler.process(c, **kw) for c in element.clauses)
    return (f"(strftime('%Y-%m-%d %H:%M:%S', {ts}, '+' || {seconds} || ' seconds')"
            f" || substr({ts}, 20))")


@compiles(shifted, "postgresql")
def _shifted_pg(element, compiler, **kw):
    ts, seconds = (compiler.process(c, **kw) for c in element.clauses)
    return f"({ts} + {seconds} * INTERVAL '1 second')"


def shift(ts: ColumnElement, span: timedelta) -> ColumnElement:
    seconds = span.total_seconds()
    if not seconds.is_integer() or seconds <= 0:
        raise ValueError("a burst window is a positive whole number of seconds")
    return shifted(ts, literal(int(seconds), Integer))


@dataclass
class Burst:
    principal: str | None
    start: datetime            # the first event of the busiest window
    last: datetime             # the last event in it
    events: int
    event_ids: list[Any] = field(default_factory=list)


def bursting_principals(
    ctx: ReportContext, condition: ColumnElement, threshold: int, span: timedelta = WINDOW
) -> list[str | None]:
    """Principals with at least ``threshold`` matching events in some window of ``span``."""
    c = audit_log.c
    # Timestamp order alone: events of equal timestamps may come in any order, the N-th
    # timestamp from each position is the same (no id in the sort key).
    nth = func.lead(c.timestamp, threshold - 1).over(partition_by=c.principal_id, order_by=c.timestamp)

    def build(where):
        inner = (select(c.principal_id.label("principal"), c.timestamp.label("ts"), nth.label("nth"))
                 .where(*where).subquery())
        return (select(inner.c.principal).distinct()
                .where(inner.c.nth.is_not(None), inner.c.nth < shift(inner.c.ts, span)))

    return [row[0] for row in ctx.conn.execute(ctx.statement(build, condition))]


def busiest_windows(
    ctx: ReportContext, condition: ColumnElement, principals: list[str | None],
    span: timedelta = WINDOW,
) -> list[Burst]:
    """The busiest window of each given principal, by events desc, principal, start."""
    if not principals:
        return []
    c = audit_log.c
    names = [p for p in principals if p is not None]
    who = [c.principal_id.in_(names)] if names else []
    if None in principals:
        who.append(c.principal_id.is_(None))
    stmt = ctx.statement(lambda where: (
        select(c.principal_id, c.timestamp, c.id).where(*where)
        .order_by(nulls_last_key(c.principal_id), binary(c.principal_id), c.timestamp, c.id)
    ), condition, or_(*who))
    result = ctx.conn.execute(
        stmt, execution_options={"stream_results": True, "yield_per": STREAM_BATCH})
    bursts: list[Burst] = []
    current: Any = object()
    window: deque[tuple[datetime, Any]] = deque()
    best: Burst | None = None
    for principal, ts, event_id in result:
        if principal != current:
            if best is not None:
                bursts.append(best)
            current, best = principal, None
            window.clear()
        window.append((ts, event_id))
        while window[0][0] + span <= ts:
            window.popleft()
        if best is None or len(window) > best.events:
            best = Burst(principal, window[0][0], ts, len(window),
                         [e for _, e in islice(window, EVIDENCE_LIMIT)])
    if best is not None:
        bursts.append(best)
    bursts.sort(key=lambda b: (-b.events, sort_key(b.principal), b.start))
    return bursts
