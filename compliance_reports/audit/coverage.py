"""How much of a window one organization's audit log covers, and where it falls silent.

Measured on every row of the organization in [start, end), whatever a report's criteria (a
gap in the log is a property of the log, not of a filtered view of it), with SQL only:

- the number of rows and the first and last event (index lookups on (organization_id,
  timestamp));
- whether the organization has rows before the window (its log began earlier) and at or after
  its end (its log goes on);
- the units without events: the hours of a window of up to two days, otherwise its local
  calendar days (DST days are 23 or 25 hours long), one EXISTS probe per unit;
- the silences: the gap between each pair of consecutive events (LAG over the timestamp, in
  index order; exact on both backends, an interval on PostgreSQL and whole microseconds on
  SQLite, so both pick the same gap), plus the silence from the window's start to the first
  event and from the last event to the window's end. Only the longest gaps come back to
  Python, with the number longer than the limit.

Status: ``no_data`` (no row in the window), ``partial`` (the log begins inside the window: no
row of the organization before it; or it ends inside the window: no row at or after the end
and the last event is more than ``max_silence_hours`` before it), else ``complete``.

Findings are warnings: a silent stretch or a log that starts late means the window cannot be
vouched for there and needs a person to look (a logging outage is a HIPAA 164.312(b) concern),
but it is not proof of tampering the way a broken hash chain is (critical), and quiet hours
can be legitimate (nights, weekends, a small tenant). A silence is "longer than" the limit
when it exceeds ``max_silence_hours`` exactly (compared in microseconds).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, func, literal, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from compliance_reports.audit.hashing import iso_millis
from compliance_reports.db.schema import audit_log
from compliance_reports.periods import resolve_local

SCOPE = "every event of the organization in the window, whatever the report's criteria"
NO_DATA, PARTIAL, COMPLETE = "no_data", "partial", "complete"
LISTED_SILENCES = 10          # silences over the limit listed one by one
PROBES_PER_STATEMENT = 100    # EXISTS probes in one SELECT
HOUR_UNIT_MAX = timedelta(days=2)
_MICROS_PER_HOUR = 3_600_000_000


class elapsed(FunctionElement):
    """``later - earlier`` for two UTC timestamp expressions, exact and orderable on both
    backends: an interval on PostgreSQL, whole microseconds on SQLite."""

    inherit_cache = True
    name = "elapsed"


@compiles(elapsed)
def _elapsed_sqlite(element, compiler, **kw):
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"({_sqlite_micros(later)} - {_sqlite_micros(earlier)})"


@compiles(elapsed, "postgresql")
def _elapsed_pg(element, compiler, **kw):
    later, earlier = (compiler.process(c, **kw) for c in element.clauses)
    return f"({later} - {earlier})"


def _sqlite_micros(ts: str) -> str:
    # SQLite keeps `YYYY-MM-DD HH:MM:SS.ffffff` UTC text (db/types.py); padding makes a missing
    # or short fraction read as zeros.
    return (f"(CAST(strftime('%s', substr({ts}, 1, 19)) AS INTEGER) * 1000000"
            f" + CAST(substr({ts} || '000000', 21, 6) AS INTEGER))")


class hours_span(FunctionElement):
    """A whole number of hours in the unit ``elapsed`` compares with."""

    inherit_cache = True
    name = "hours_span"


@compiles(hours_span)
def _hours_span_sqlite(element, compiler, **kw):
    return f"({compiler.process(element.clauses, **kw)} * 3600000000)"


@compiles(hours_span, "postgresql")
def _hours_span_pg(element, compiler, **kw):
    return f"make_interval(hours => {compiler.process(element.clauses, **kw)})"


def _micros(delta: timedelta) -> int:
    return delta // timedelta(microseconds=1)


def _hours(micros: int) -> float | int:
    value = round(micros / _MICROS_PER_HOUR, 2)
    return int(value) if float(value).is_integer() else value


def _iso(ts: datetime) -> str:
    return iso_millis(ts)


@dataclass(frozen=True)
class Silence:
    start_utc: datetime
    end_utc: datetime
    kind: str                      # head (from the window start) | gap | tail (to the end) | whole
    after_event_id: Any = None     # the event before the silence (None at the window start)
    before_event_id: Any = None    # the event ending it (None at the window end)

    @property
    def micros(self) -> int:
        return _micros(self.end_utc - self.start_utc)

    @property
    def hours(self) -> float | int:
        return _hours(self.micros)

    def evidence(self) -> list[Any]:
        return [i for i in (self.after_event_id, self.before_event_id) if i is not None]

    def to_dict(self, zone: ZoneInfo) -> dict[str, Any]:
        return {
            "start_utc": _iso(self.start_utc), "end_utc": _iso(self.end_utc),
            "start_local": self.start_utc.astimezone(zone).isoformat(timespec="seconds"),
            "end_local": self.end_utc.astimezone(zone).isoformat(timespec="seconds"),
            "hours": self.hours, "seconds": self.micros / 1_000_000, "kind": self.kind,
            "after_event_id": self.after_event_id, "before_event_id": self.before_event_id,
        }


@dataclass
class Coverage:
    organization_id: str
    start_utc: datetime
    end_utc: datetime
    measured_end_utc: datetime        # end_utc, or "now" for a window that has not ended
    timezone: str
    unit: str                         # hour | day
    max_silence_hours: int
    events: int = 0
    first_event: tuple[Any, datetime] | None = None     # (id, timestamp)
    last_event: tuple[Any, datetime] | None = None
    log_starts_before: bool = False
    log_continues_after: bool = False
    units: list[tuple[datetime, datetime]] = field(default_factory=list)
    empty_units: list[tuple[datetime, datetime]] = field(default_factory=list)
    longest_silence: Silence | None = None
    long_silences: list[Silence] = field(default_factory=list)   # longest first, at most 10
    long_silences_total: int = 0
    begins_inside: bool = False
    ends_inside: bool = False
    findings: list[dict[str, Any]] = field(default_factory=list)

    @property
    def status(self) -> str:
        if not self.events:
            return NO_DATA
        return PARTIAL if self.begins_inside or self.ends_inside else COMPLETE

    @property
    def covers_whole_window(self) -> bool:
        return self.status == COMPLETE

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def covered(self) -> tuple[datetime, datetime] | None:
        if not self.events:
            return None
        start = self.first_event[1] if self.begins_inside else self.start_utc
        end = self.last_event[1] if self.ends_inside else self.measured_end_utc
        return start, end

    def empty_ranges(self) -> list[tuple[datetime, datetime, int]]:
        """Consecutive units without events merged: (start, end, number of units)."""
        ranges: list[list[Any]] = []
        for start, end in self.empty_units:
            if ranges and ranges[-1][1] == start:
                ranges[-1][1] = end
                ranges[-1][2] += 1
            else:
                ranges.append([start, end, 1])
        return [tuple(r) for r in ranges]

    def local(self, ts: datetime) -> str:
        return ts.astimezone(self.zone).isoformat(timespec="seconds")

    def describe(self) -> str:
        """One line for people: the status, and where the log is silent the longest."""
        if self.status == NO_DATA:
            return "no events in the window"
        text = "complete" if self.status == COMPLETE else (
            f"partial: covered from {self.local(self.covered[0])} to {self.local(self.covered[1])}")
        if self.longest_silence is not None:
            text += f"; longest silence {self.longest_silence.hours} h"
        return text

    def to_dict(self) -> dict[str, Any]:
        zone = self.zone
        covered = self.covered
        event = (lambda e: {"event_id": e[0], "time_utc": _iso(e[1]), "time_local": self.local(e[1])}
                 if e else None)
        return {
            "scope": SCOPE,
            "status": self.status,
            "covers_whole_window": self.covers_whole_window,
            "window_start_utc": _iso(self.start_utc),
            "window_end_utc": _iso(self.end_utc),
            "measured_until_utc": _iso(self.measured_end_utc),
            "events": self.events,
            "first_event": event(self.first_event),
            "last_event": event(self.last_event),
            "log_starts_before_window": self.log_starts_before,
            "log_continues_after_window": self.log_continues_after,
            "covered_from_utc": _iso(covered[0]) if covered else None,
            "covered_to_utc": _iso(covered[1]) if covered else None,
            "unit": self.unit,
            "units_in_window": len(self.units),
            "units_without_events": len(self.empty_units),
            "without_events": [
                {"start_utc": _iso(s), "end_utc": _iso(e), "start_local": self.local(s),
                 "end_local": self.local(e), "units": n}
                for s, e, n in self.empty_ranges()
            ],
            "longest_silence": self.longest_silence.to_dict(zone) if self.longest_silence else None,
            "max_silence_hours": self.max_silence_hours,
            "silences_over_limit": self.long_silences_total,
            "long_silences": [s.to_dict(zone) for s in self.long_silences],
            "findings": [dict(f) for f in self.findings],
        }


def unit_for(start_utc: datetime, end_utc: datetime) -> str:
    """Hours for a day-long window (up to two days), local calendar days for longer ones."""
    return "hour" if end_utc - start_utc <= HOUR_UNIT_MAX else "day"


def window_units(
    start_utc: datetime, end_utc: datetime, unit: str, tz: str
) -> list[tuple[datetime, datetime]]:
    """[start, end) cut into hours from the start, or into local days (first and last may be partial)."""
    units = []
    cursor = start_utc
    zone = ZoneInfo(tz)
    while cursor < end_utc:
        if unit == "hour":
            nxt = cursor + timedelta(hours=1)
        else:
            day = cursor.astimezone(zone).date() + timedelta(days=1)
            nxt = resolve_local(datetime.combine(day, time(0)), tz)
        nxt = min(nxt, end_utc)
        units.append((cursor, nxt))
        cursor = nxt
    return units


def _edges(conn: Connection, org: str, start: datetime, end: datetime):
    c = audit_log.c
    in_window = and_(c.organization_id == org, c.timestamp >= start, c.timestamp < end)
    count = conn.execute(select(func.count()).select_from(audit_log).where(in_window)).scalar_one()
    first = conn.execute(select(c.id, c.timestamp).where(in_window)
                         .order_by(c.timestamp, c.id).limit(1)).first()
    last = conn.execute(select(c.id, c.timestamp).where(in_window)
                        .order_by(c.timestamp.desc(), c.id.desc()).limit(1)).first()
    before = select(literal(1)).where(c.organization_id == org, c.timestamp < start).exists()
    after = select(literal(1)).where(c.organization_id == org, c.timestamp >= end).exists()
    flags = conn.execute(select(before.label("before"), after.label("after"))).one()
    return count, first, last, bool(flags.before), bool(flags.after)


def _empty_units(conn: Connection, org: str, units: list[tuple[datetime, datetime]]):
    c = audit_log.c
    empty = []
    for offset in range(0, len(units), PROBES_PER_STATEMENT):
        chunk = units[offset:offset + PROBES_PER_STATEMENT]
        probes = [
            select(literal(1)).where(c.organization_id == org, c.timestamp >= s, c.timestamp < e)
            .exists().label(f"u{i}")
            for i, (s, e) in enumerate(chunk)
        ]
        found = conn.execute(select(*probes)).one()
        empty += [unit for unit, has in zip(chunk, found) if not has]
    return empty


def _longest_gaps(conn: Connection, org: str, start: datetime, end: datetime, limit_hours: int):
    """The longest gaps between consecutive events (longest first, then earliest) and the number
    of gaps longer than ``limit_hours``.

    The window is ordered by timestamp alone (index order, no sort); a gap's bounding events are
    then looked up by their instants: the last event at its start, the first at its end, in
    (timestamp, id) order."""
    c = audit_log.c
    inner = (
        select(c.timestamp,
               func.lag(c.timestamp, type_=c.timestamp.type).over(order_by=c.timestamp).label("prev_ts"))
        .where(c.organization_id == org, c.timestamp >= start, c.timestamp < end)
        .subquery()
    )
    gap = elapsed(inner.c.timestamp, inner.c.prev_ts)
    rows = conn.execute(
        select(inner.c.prev_ts, inner.c.timestamp)
        .where(inner.c.prev_ts.is_not(None))
        .order_by(gap.desc(), inner.c.timestamp)
        .limit(LISTED_SILENCES + 1)
    ).all()
    limit_us = limit_hours * _MICROS_PER_HOUR
    over = sum(1 for r in rows if _micros(r.timestamp - r.prev_ts) > limit_us)
    if over == len(rows) == LISTED_SILENCES + 1:   # more may follow: count them all
        over = conn.execute(
            select(func.count()).select_from(inner)
            .where(inner.c.prev_ts.is_not(None), gap > hours_span(literal(limit_hours)))
        ).scalar_one()
    gaps = []
    for row in rows:
        before = conn.execute(select(func.max(c.id)).where(
            c.organization_id == org, c.timestamp == row.prev_ts)).scalar_one()
        after = conn.execute(select(func.min(c.id)).where(
            c.organization_id == org, c.timestamp == row.timestamp)).scalar_one()
        gaps.append(Silence(row.prev_ts, row.timestamp, "gap", before, after))
    return gaps, over


def measure_coverage(
    conn: Connection,
    organization_id: str,
    start_utc: datetime,
    end_utc: datetime,
    *,
    timezone_name: str,
    max_silence_hours: int,
    now: datetime | None = None,
    unit: str | None = None,
) -> Coverage:
    """The coverage of [start_utc, end_utc) by the organization's log (see module docstring)."""
    now = now or datetime.now(timezone.utc)
    measured_end = max(start_utc, min(end_utc, now))
    unit = unit or unit_for(start_utc, end_utc)
    limit_us = max_silence_hours * _MICROS_PER_HOUR
    cov = Coverage(organization_id, start_utc, end_utc, measured_end, timezone_name, unit,
                   max_silence_hours)
    cov.units = window_units(start_utc, measured_end, unit, timezone_name)
    count, first, last, cov.log_starts_before, cov.log_continues_after = _edges(
        conn, organization_id, start_utc, measured_end)
    cov.events = count
    if not count:
        cov.empty_units = list(cov.units)
        cov.longest_silence = Silence(start_utc, measured_end, "whole")
        cov.findings.append(_finding(
            "coverage_no_data", "No audit events in the window",
            f"The organization has no audit event from {cov.local(start_utc)} to "
            f"{cov.local(measured_end)} ({_hours(_micros(measured_end - start_utc))} hours): "
            "the log is silent for the whole window, so nothing in it can be verified.", []))
        return cov

    cov.first_event, cov.last_event = (first.id, first.timestamp), (last.id, last.timestamp)
    cov.empty_units = _empty_units(conn, organization_id, cov.units)
    gaps, internal_over = _longest_gaps(conn, organization_id, start_utc, measured_end,
                                        max_silence_hours)
    head = Silence(start_utc, first.timestamp, "head", None, first.id)
    tail = Silence(last.timestamp, measured_end, "tail", last.id, None)
    cov.begins_inside = not cov.log_starts_before
    cov.ends_inside = not cov.log_continues_after and tail.micros > limit_us
    # Ties go to the earliest silence: head, then gaps in time order, then tail.
    candidates = [head, *gaps[:1], tail]
    cov.longest_silence = max(enumerate(candidates), key=lambda item: (item[1].micros, -item[0]))[1]

    # Head and tail silences that partial coverage explains are reported as such, not twice.
    edges = [s for s, explained in ((head, cov.begins_inside), (tail, cov.ends_inside))
             if not explained and s.micros > limit_us]
    long = sorted([*(g for g in gaps if g.micros > limit_us), *edges],
                  key=lambda s: (-s.micros, s.start_utc))
    cov.long_silences = long[:LISTED_SILENCES]
    cov.long_silences_total = internal_over + len(edges)

    if cov.begins_inside:
        cov.findings.append(_finding(
            "coverage_partial", "Audit log begins inside the window",
            f"The organization's first audit event is at {cov.local(first.timestamp)}, "
            f"{head.hours} hours after the window starts, and it has no earlier event: the "
            "window is covered only from then on.", [first.id]))
    if cov.ends_inside:
        cov.findings.append(_finding(
            "coverage_partial", "Audit log ends inside the window",
            f"The organization's last audit event is at {cov.local(last.timestamp)}, "
            f"{tail.hours} hours before {'the window ends' if measured_end == end_utc else 'now'} "
            f"({cov.local(measured_end)}), and it has "
            f"no later event: the window is covered only up to then (limit "
            f"{max_silence_hours} hours).", [last.id]))
    for silence in cov.long_silences:
        cov.findings.append(_finding(
            "coverage_silence", f"No audit events for {silence.hours} hours",
            f"No audit event of the organization from {cov.local(silence.start_utc)} to "
            f"{cov.local(silence.end_utc)} ({silence.hours} hours, longer than "
            f"max_silence_hours = {max_silence_hours}).", silence.evidence()))
    if cov.long_silences_total > len(cov.long_silences):
        more = cov.long_silences_total - len(cov.long_silences)
        cov.findings.append(_finding(
            "coverage_silence", f"{more} more silence(s) longer than {max_silence_hours} hours",
            f"Only the {len(cov.long_silences)} longest silences are listed; {more} more are "
            f"longer than max_silence_hours = {max_silence_hours}.", []))
    return cov


def _finding(code: str, title: str, detail: str, evidence: list[Any]) -> dict[str, Any]:
    """A finding in the report document's shape (see reports/document.py)."""
    return {"severity": "warning", "code": code, "title": title, "detail": detail,
            "evidence_event_ids": list(evidence)}


__all__ = ["COMPLETE", "NO_DATA", "PARTIAL", "Coverage", "Silence", "measure_coverage",
           "unit_for", "window_units"]
