"""Deadlines judged on instants, shown rounded for people.

A verdict (late, overdue) always comes from comparing two exact instants (microseconds, as the
audit log stores them): something done AT its deadline is on time, one microsecond after it is
late. A duration rounded for display (hours to one decimal, whole days) never decides anything,
because 72 h 0 min 0.001 s rounds to "72.0" and would read as on time.

What people read next to the verdict is ``overdue_text``: how far past the deadline, in the two
largest units ("1 ms", "2 min 58 s", "3 d 4 h"), truncated so that it never overstates.
"""

from __future__ import annotations

from datetime import datetime, timedelta


def is_past(deadline: datetime, at: datetime) -> bool:
    """True when ``at`` is after ``deadline`` (at the deadline itself is in time)."""
    return at > deadline


_UNITS = (("d", 86_400_000_000), ("h", 3_600_000_000), ("min", 60_000_000), ("s", 1_000_000),
          ("ms", 1_000))


def overdue_text(delta: timedelta) -> str:
    """A positive duration for people: its two largest non-zero units, truncated."""
    micros = delta // timedelta(microseconds=1)
    if micros <= 0:
        raise ValueError("overdue_text needs a positive duration")
    if micros < 1_000:
        return "less than 1 ms"
    parts: list[str] = []
    for index, (name, size) in enumerate(_UNITS):
        if micros >= size:
            parts.append(f"{micros // size} {name}")
            if index + 1 < len(_UNITS):
                next_name, next_size = _UNITS[index + 1]
                rest = (micros % size) // next_size
                if rest:
                    parts.append(f"{rest} {next_name}")
            break
    return " ".join(parts)
