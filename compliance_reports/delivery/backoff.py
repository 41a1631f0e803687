"""Retry delays: capped exponential backoff with jitter, and Retry-After parsing.

delay(n) = min(max_delay, initial * multiplier ** n) for the n-th retry (n = 0 after the first
failed attempt), then jittered. Jitter modes:
- "equal" (default): uniform in [delay/2, delay]. Retries never come sooner than half the
  nominal delay, and concurrent failures still spread out.
- "full": uniform in [0, delay] (AWS "full jitter"): best spread, may retry almost at once.
- "none": exactly delay (tests, or when a single client retries).
`rand` is any zero-argument callable returning a float in [0, 1) (random.random by default) so
tests can pin it.
"""

from __future__ import annotations

import random
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Callable

JITTER_MODES = ("equal", "full", "none")


def nominal_delay(n: int, initial: float, multiplier: float, max_delay: float) -> float:
    """min(max_delay, initial * multiplier ** n), without overflowing for large n."""
    if n < 0:
        n = 0
    try:
        raw = initial * (multiplier ** n)
    except OverflowError:
        return max_delay
    return min(max_delay, raw)


def backoff_delay(
    n: int,
    *,
    initial: float,
    multiplier: float,
    max_delay: float,
    jitter: str = "equal",
    rand: Callable[[], float] | None = None,
) -> float:
    if jitter not in JITTER_MODES:
        raise ValueError(f"jitter must be one of {JITTER_MODES}, not {jitter!r}")
    base = nominal_delay(n, initial, multiplier, max_delay)
    r = (rand or random.random)()
    if jitter == "full":
        return base * r
    if jitter == "equal":
        return base / 2 + (base / 2) * r
    return base


def policy_delay(policy, n: int, *, jitter: str = "equal", rand: Callable[[], float] | None = None) -> float:
    """The delay before retry `n` under a `RetryPolicy`."""
    return backoff_delay(
        n,
        initial=policy.initial_delay_s,
        multiplier=policy.multiplier,
        max_delay=policy.max_delay_s,
        jitter=jitter,
        rand=rand,
    )


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date.

    Returns None for a missing or unreadable value; a date in the past gives 0.
    """
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(int(value))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    now = now or datetime.now(timezone.utc)
    return max(0.0, (when - now).total_seconds())
