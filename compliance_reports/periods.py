"""Report periods and schedule slots, each report in its own IANA timezone.

A *period* is a calendar day, ISO week (Monday-Sunday), calendar month or calendar quarter
(starting Jan/Apr/Jul/Oct) in the report's timezone.  Its key is its local start date
("YYYY-MM-DD") and its UTC window is [local start 00:00, local start of the next period 00:00),
so DST days last 23 or 25 hours (23.5 / 24.5 on Australia/Lord_Howe).

A *slot* is an instant at which a scheduled run starts.  The schedule is a sequence of
*cycles*, one per period of the report's frequency: each cycle has exactly one planned local
slot (daily at ``time``; weekly on ``day_of_week``; monthly on ``day_of_month`` clamped to the
month; quarterly on ``day_of_month`` of the quarter's first month), and the slot of the cycle
starting on date ``c`` covers the period just before ``c`` -- the most recent period that ended
at or before the slot.

Local wall times are turned into instants by :func:`resolve_local`: a time that does not exist
(spring forward) moves to the end of the gap, an ambiguous one (fall back) takes its first
occurrence.  All stepping is done over the local calendar and every slot is resolved on its
own, so slots keep their wall time across DST changes instead of drifting by an hour.

Bounds (``ScheduleSpec.start_date`` / ``end_date``, local dates in the report's timezone):

* the first period ever reported is the one containing ``start_date``; a slot whose period
  starts earlier is not produced (so a daily report starting 2026-11-27 first runs on
  2026-11-28 for 2026-11-27, and a monthly report starting 2026-11-15 first runs in December
  for November);
* no slot is produced on a local date after ``end_date`` (a slot on ``end_date`` itself is).

The first rule implies that no slot falls before ``start_date``'s local midnight.
"""

from __future__ import annotations

import calendar
import math
import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta, timezone as _dt_timezone
from itertools import islice, takewhile
from typing import Iterator
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

FREQUENCIES = ("daily", "weekly", "monthly", "quarterly")
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

UTC = _dt_timezone.utc
_MIDNIGHT = time(0, 0)
_TIME_RE = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
_KEY_RE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
# Period keys the date arithmetic handles (the period after 9999-12-01 would not exist).
KEY_YEARS = (1900, 2999)


# --------------------------------------------------------------------------- validation


def _zone(name: str) -> ZoneInfo:
    """Load an IANA zone, turning every way a name can be bad into one ValueError."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"timezone must be a non-empty IANA name, got {name!r}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"timezone {name!r} is not a known IANA timezone") from exc


def _check_frequency(frequency: str) -> None:
    if frequency not in FREQUENCIES:
        raise ValueError(f"frequency must be one of {', '.join(FREQUENCIES)}, got {frequency!r}")


def _require_aware(value: datetime, name: str) -> None:
    """Naive datetimes are refused: guessing their zone is the bug this module exists to fix."""
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be a timezone-aware datetime, got {value!r}")


@dataclass(frozen=True)
class ScheduleSpec:
    """When a report runs.  ``day_of_month`` defaults to 1 for monthly and quarterly.

    Fields that do not apply to the frequency (``day_of_week`` outside weekly,
    ``day_of_month`` outside monthly/quarterly) are rejected rather than ignored, so a
    misconfigured schedule fails loudly instead of running on the wrong day.
    """

    frequency: str
    time: str = "06:00"
    timezone: str = "UTC"
    day_of_week: str | None = None
    day_of_month: int | str | None = None
    start_date: date | None = None
    end_date: date | None = None
    max_catch_up: int = 3

    def __post_init__(self) -> None:
        _check_frequency(self.frequency)
        if not isinstance(self.time, str) or not _TIME_RE.fullmatch(self.time):
            raise ValueError(f"time must be 'HH:MM' (24-hour, 00:00-23:59), got {self.time!r}")
        _zone(self.timezone)
        self._validate_day_of_week()
        self._validate_day_of_month()
        for name in ("start_date", "end_date"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, date) or isinstance(value, datetime)):
                raise ValueError(f"{name} must be a date (not a datetime), got {value!r}")
        start, end = self.start_date, self.end_date
        if start is not None and end is not None and end < start:
            raise ValueError(f"end_date {self.end_date} is before start_date {self.start_date}")
        if (
            not isinstance(self.max_catch_up, int)
            or isinstance(self.max_catch_up, bool)
            or self.max_catch_up < 1
        ):
            raise ValueError(f"max_catch_up must be an integer >= 1, got {self.max_catch_up!r}")

    def _validate_day_of_week(self) -> None:
        if self.frequency == "weekly":
            if self.day_of_week not in WEEKDAYS:
                raise ValueError(
                    f"day_of_week is required for weekly schedules and must be one of "
                    f"{', '.join(WEEKDAYS)}, got {self.day_of_week!r}"
                )
        elif self.day_of_week is not None:
            raise ValueError(f"day_of_week only applies to weekly schedules, not {self.frequency}")

    def _validate_day_of_month(self) -> None:
        if self.frequency not in ("monthly", "quarterly"):
            if self.day_of_month is not None:
                raise ValueError(
                    f"day_of_month only applies to monthly and quarterly schedules, "
                    f"not {self.frequency}"
                )
            return
        if self.day_of_month is None:
            object.__setattr__(self, "day_of_month", 1)
            return
        valid = self.day_of_month == "last" or (
            isinstance(self.day_of_month, int)
            and not isinstance(self.day_of_month, bool)
            and 1 <= self.day_of_month <= 31
        )
        if not valid:
            raise ValueError(f"day_of_month must be 1-31 or 'last', got {self.day_of_month!r}")

    @property
    def local_time(self) -> time:
        return time(int(self.time[:2]), int(self.time[3:]))


# --------------------------------------------------------------------------- periods


@dataclass(frozen=True)
class Window:
    """A period's extent: UTC bounds for queries, local bounds for people."""

    period_key: str
    frequency: str
    timezone: str
    start_utc: datetime
    end_utc: datetime
    start_local: datetime
    end_local: datetime

    @property
    def hours(self) -> float:
        return (self.end_utc - self.start_utc).total_seconds() / 3600

    def contains(self, instant: datetime) -> bool:
        _require_aware(instant, "instant")
        return self.start_utc <= instant < self.end_utc


def period_start_for(day: date, frequency: str) -> date:
    """Start date of the period of ``frequency`` that contains the local date ``day``."""
    _check_frequency(frequency)
    if frequency == "daily":
        return day
    if frequency == "weekly":
        return day - timedelta(days=day.weekday())
    if frequency == "monthly":
        return day.replace(day=1)
    return date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)


def _add_months(start: date, months: int) -> date:
    index = start.year * 12 + start.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _next_start(start: date, frequency: str) -> date:
    if frequency == "daily":
        return start + timedelta(days=1)
    if frequency == "weekly":
        return start + timedelta(days=7)
    return _add_months(start, 1 if frequency == "monthly" else 3)


def _previous_start(start: date, frequency: str) -> date:
    return period_start_for(start - timedelta(days=1), frequency)


def validate_period_key(key: str, frequency: str) -> date:
    """Parse a period key, refusing anything that is not the first day of a period."""
    _check_frequency(frequency)
    if not isinstance(key, str) or not _KEY_RE.fullmatch(key):
        raise ValueError(f"{frequency} period key must be 'YYYY-MM-DD', got {key!r}")
    try:
        day = date.fromisoformat(key)
    except ValueError as exc:
        raise ValueError(f"{frequency} period key {key!r} is not a valid date") from exc
    if not KEY_YEARS[0] <= day.year <= KEY_YEARS[1]:
        raise ValueError(
            f"{frequency} period key {key!r} is outside the years {KEY_YEARS[0]} to {KEY_YEARS[1]}"
        )
    if period_start_for(day, frequency) != day:
        reason = {
            "weekly": f"is a {WEEKDAYS[day.weekday()].title()}; weekly periods start on Monday",
            "monthly": "is not the first day of a month",
            "quarterly": "is not the first day of a calendar quarter (Jan, Apr, Jul or Oct 1)",
        }[frequency]
        raise ValueError(f"{frequency} period key {key!r} {reason}")
    return day


def next_period_start(start: date, frequency: str) -> date:
    """Start of the period after the one starting on ``start`` (which must be a period start)."""
    validate_period_key(start.isoformat(), frequency)
    return _next_start(start, frequency)


def previous_period_key(key: str, frequency: str) -> str:
    return _previous_start(validate_period_key(key, frequency), frequency).isoformat()


def resolve_local(local: datetime, timezone: str) -> datetime:
    """Turn a naive local wall time into an aware UTC instant.

    zoneinfo never raises for wall times that do not exist; it silently maps them using the
    offset before the transition.  A round trip through UTC tells whether the wall time
    exists.  If it does, fold=0 is its first occurrence (the rule for ambiguous times).  If it
    falls in a gap, the result is the transition instant itself -- the first valid instant
    after the gap -- found by bisection because zoneinfo does not expose its transitions
    and gaps are not always an hour (Lord_Howe: 30 minutes; Pacific/Apia 2011: a whole day).
    """
    if not isinstance(local, datetime) or local.tzinfo is not None:
        raise ValueError(f"local must be a naive datetime (wall time), got {local!r}")
    zone = _zone(timezone)
    first = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
    if first.astimezone(zone).replace(tzinfo=None) == local:
        return first
    # In a gap, fold=0 and fold=1 read the wall time with the offsets on either side of the
    # transition, giving one instant after it and one before it.  Bisect on whole seconds
    # (tz transitions are whole seconds) for the first instant whose wall time is past `local`.
    second = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
    lo = math.floor(min(first, second).timestamp())
    hi = math.ceil(max(first, second).timestamp())
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if datetime.fromtimestamp(mid, zone).replace(tzinfo=None) >= local:
            hi = mid
        else:
            lo = mid
    return datetime.fromtimestamp(hi, UTC)


def _local_midnight(day: date, timezone: str) -> datetime:
    return resolve_local(datetime.combine(day, _MIDNIGHT), timezone)


def period_window(key: str, frequency: str, timezone: str) -> Window:
    start = validate_period_key(key, frequency)
    zone = _zone(timezone)
    start_utc = _local_midnight(start, timezone)
    end_utc = _local_midnight(_next_start(start, frequency), timezone)
    return Window(
        period_key=key,
        frequency=frequency,
        timezone=timezone,
        start_utc=start_utc,
        end_utc=end_utc,
        start_local=start_utc.astimezone(zone),
        end_local=end_utc.astimezone(zone),
    )


def period_containing(instant: datetime, frequency: str, timezone: str) -> str:
    """Key of the period whose UTC window contains ``instant``.

    The instant's local date gives the answer except where a fall-back repeats wall times
    across midnight; the window check then moves to the neighbouring period, so the result
    always agrees with :func:`period_window`.
    """
    _require_aware(instant, "instant")
    _check_frequency(frequency)
    zone = _zone(timezone)
    start = period_start_for(instant.astimezone(zone).date(), frequency)
    while instant < _local_midnight(start, timezone):
        start = _previous_start(start, frequency)
    while instant >= _local_midnight(_next_start(start, frequency), timezone):
        start = _next_start(start, frequency)
    return start.isoformat()


def latest_ended_period(instant: datetime, frequency: str, timezone: str) -> str:
    """Most recent period whose end is at or before ``instant``: the one before the current."""
    return previous_period_key(period_containing(instant, frequency, timezone), frequency)


def period_has_ended(key: str, frequency: str, timezone: str, now: datetime) -> bool:
    _require_aware(now, "now")
    return period_window(key, frequency, timezone).end_utc <= now


# --------------------------------------------------------------------------- slots


def _slot_date(spec: ScheduleSpec, cycle: date) -> date:
    """Local date of the planned slot in the cycle starting on ``cycle``."""
    if spec.frequency == "daily":
        return cycle
    if spec.frequency == "weekly":
        return cycle + timedelta(days=WEEKDAYS.index(spec.day_of_week))
    month_length = calendar.monthrange(cycle.year, cycle.month)[1]
    day = month_length if spec.day_of_month == "last" else min(spec.day_of_month, month_length)
    return cycle.replace(day=day)


def _first_cycle(spec: ScheduleSpec) -> date | None:
    """First cycle whose slot may run: the one covering the period containing start_date."""
    if spec.start_date is None:
        return None
    return _next_start(period_start_for(spec.start_date, spec.frequency), spec.frequency)


def _slot(spec: ScheduleSpec, cycle: date) -> datetime:
    return resolve_local(datetime.combine(_slot_date(spec, cycle), spec.local_time), spec.timezone)


def _local_date(instant: datetime, spec: ScheduleSpec) -> date:
    return instant.astimezone(_zone(spec.timezone)).date()


def _slots_forward(spec: ScheduleSpec, after: datetime) -> Iterator[tuple[date, datetime]]:
    """(cycle, slot) for every planned slot strictly after ``after``, oldest first.

    Iteration starts one cycle before the one containing ``after``: a slot pushed forward by
    a DST gap can land after the start of the next cycle.
    """
    current = period_start_for(_local_date(after, spec), spec.frequency)
    cycle = _previous_start(current, spec.frequency)
    first = _first_cycle(spec)
    if first is not None and cycle < first:
        cycle = first
    while spec.end_date is None or _slot_date(spec, cycle) <= spec.end_date:
        slot = _slot(spec, cycle)
        if slot > after:
            yield cycle, slot
        cycle = _next_start(cycle, spec.frequency)


def _slots_backward(spec: ScheduleSpec, at_or_before: datetime) -> Iterator[tuple[date, datetime]]:
    """(cycle, slot) for every planned slot at or before ``at_or_before``, newest first.

    Iteration starts one cycle after the one containing the instant (an instant in a repeated
    hour just before midnight can follow the next day's first slot) and from end_date's cycle
    if that is earlier, so it never walks through time where no slot can be.
    """
    day = _local_date(at_or_before, spec)
    if spec.end_date is not None and spec.end_date < day:
        day = spec.end_date
    cycle = _next_start(period_start_for(day, spec.frequency), spec.frequency)
    first = _first_cycle(spec)
    while first is None or cycle >= first:
        if spec.end_date is None or _slot_date(spec, cycle) <= spec.end_date:
            slot = _slot(spec, cycle)
            if slot <= at_or_before:
                yield cycle, slot
        cycle = _previous_start(cycle, spec.frequency)


def slots_after(spec: ScheduleSpec, after: datetime, n: int) -> list[datetime]:
    """The next ``n`` slots strictly after ``after`` (fewer if end_date comes first).

    Pass the previous planned slot as ``after`` to get the next one; the result depends only
    on the calendar, never on when the call is made.
    """
    _require_aware(after, "after")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    return [slot for _, slot in islice(_slots_forward(spec, after), n)]


def slots_between(spec: ScheduleSpec, start: datetime, end: datetime) -> list[datetime]:
    """Slots in (start, end]."""
    _require_aware(start, "start")
    _require_aware(end, "end")
    return [slot for _, slot in takewhile(lambda pair: pair[1] <= end, _slots_forward(spec, start))]


def last_slot_at_or_before(spec: ScheduleSpec, instant: datetime) -> datetime | None:
    """None when no slot has happened yet (start_date ahead of ``instant``)."""
    _require_aware(instant, "instant")
    planned = next(_slots_backward(spec, instant), None)
    return None if planned is None else planned[1]


def _covered_key(spec: ScheduleSpec, cycle: date) -> str:
    """Key of the period covered by the slot of ``cycle``: the period just before it."""
    return _previous_start(cycle, spec.frequency).isoformat()


def period_for_slot(spec: ScheduleSpec, slot: datetime) -> str:
    """The period a slot covers: the most recent one that ended at or before it.

    For a planned slot the answer is read off the schedule (the slot of cycle ``c`` covers
    the period before ``c``).  That is the same period except where a zone skips a whole
    local day (Pacific/Apia, 2011-12-30): the skipped day's slot lands on the next midnight,
    and reading the rule off the instant alone would cover the empty day twice and the day
    before it never.  Any other instant gets the rule as stated.
    """
    _require_aware(slot, "slot")
    planned = next(_slots_backward(spec, slot), None)
    if planned is not None and planned[1] == slot:
        return _covered_key(spec, planned[0])
    return latest_ended_period(slot, spec.frequency, spec.timezone)


def due_periods(
    spec: ScheduleSpec,
    now: datetime,
    done: set[str] | frozenset[str],
    since: datetime | None = None,
) -> list[str]:
    """Periods a schedule tick at ``now`` should request, oldest first.

    The tick looks back over a fixed horizon: the last ``max_catch_up`` slots at or before
    ``now`` (only those after ``since``, if given, e.g. the report's creation), walked back
    over the local calendar.  The periods those slots cover that are not in ``done`` are
    returned.  The horizon is fixed so that a second tick never reaches further back than the
    first: once the requested periods have run, nothing more is due until the next slot.
    Anything older stays missing, for a backfill to pick up.  Cost is O(max_catch_up)
    whatever the report's age.
    """
    _require_aware(now, "now")
    if since is not None:
        _require_aware(since, "since")
    missing: list[str] = []
    for cycle, slot in islice(_slots_backward(spec, now), spec.max_catch_up):
        if since is not None and slot <= since:
            break
        key = _covered_key(spec, cycle)
        if key not in done:
            missing.append(key)
    return missing[::-1]


def describe_slots(spec: ScheduleSpec, after: datetime, n: int) -> list[dict[str, str]]:
    """The next ``n`` slots with the period each covers, as ISO strings (``reports next-runs``)."""
    _require_aware(after, "after")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    zone = _zone(spec.timezone)
    rows = []
    for cycle, slot in islice(_slots_forward(spec, after), n):
        window = period_window(_covered_key(spec, cycle), spec.frequency, spec.timezone)
        rows.append(
            {
                "slot_utc": slot.isoformat(),
                "slot_local": slot.astimezone(zone).isoformat(),
                "period": window.period_key,
                "window_start_utc": window.start_utc.isoformat(),
                "window_end_utc": window.end_utc.isoformat(),
            }
        )
    return rows


# --------------------------------------------------------------------------- labels


def human_period_label(key: str, frequency: str) -> str:
    """The period as a reader names it: "1 October 2026", "Week 48 (23-29 November 2026)",
    "October 2026", "Q3 2026". Locale-neutral English, for report page 1 and mail subjects."""
    start = validate_period_key(key, frequency)
    if frequency == "daily":
        return f"{start.day} {calendar.month_name[start.month]} {start.year}"
    if frequency == "weekly":
        end = start + timedelta(days=6)
        week = start.isocalendar().week
        if (start.year, start.month) == (end.year, end.month):
            span = f"{start.day}-{end.day} {calendar.month_name[end.month]} {end.year}"
        elif start.year == end.year:
            span = (f"{start.day} {calendar.month_name[start.month]} - "
                    f"{end.day} {calendar.month_name[end.month]} {end.year}")
        else:
            span = (f"{start.day} {calendar.month_name[start.month]} {start.year} - "
                    f"{end.day} {calendar.month_name[end.month]} {end.year}")
        return f"Week {week} ({span})"
    if frequency == "monthly":
        return f"{calendar.month_name[start.month]} {start.year}"
    return f"Q{(start.month - 1) // 3 + 1} {start.year}"
