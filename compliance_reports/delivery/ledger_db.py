"""What the ledger needs from its database besides the table: its clock, and which of its
errors are transient.

Due times, give-up times and lease expiry are compared with the DATABASE's clock, read in the
same transaction as the UPDATE that uses it, so workers whose clocks disagree still agree on
who holds a row (PostgreSQL: clock_timestamp(); SQLite: strftime('now'), UTC, milliseconds).
Tests override it by passing `now` explicitly (a fake clock).

A transient error (connection refused or dropped, server restarting, lock or busy timeout) is
retried with backoff by `retry_transient`; anything else is a bug and propagates.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Callable, TypeVar

from sqlalchemy import Engine, text
from sqlalchemy.exc import DBAPIError, DisconnectionError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

T = TypeVar("T")

# Waits between tries of one ledger operation: about 30 s in all, then the caller gives up
# on this row (it stays visible to the retry sweep) and goes on with the others.
RETRY_DELAYS_S = (0.2, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0)


class LedgerUnavailable(Exception):
    """The ledger could not be read or written after retries (the database is unavailable)."""


def database_now(conn) -> datetime:
    """The database server's current time, as an aware UTC datetime."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        value = conn.execute(text("SELECT clock_timestamp()")).scalar_one()
    elif dialect == "sqlite":
        value = conn.execute(text("SELECT strftime('%Y-%m-%d %H:%M:%f', 'now')")).scalar_one()
    else:
        value = conn.execute(text("SELECT CURRENT_TIMESTAMP")).scalar_one()
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def database_time(engine: Engine) -> datetime:
    with engine.connect() as conn:
        return database_now(conn)


def is_transient(exc: BaseException) -> bool:
    if isinstance(exc, (OperationalError, InterfaceError, DisconnectionError, PoolTimeoutError)):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


def retry_transient(
    operation: Callable[[], T],
    what: str,
    *,
    sleep_fn: Callable[[float], None] = time.sleep,
    log: Callable[[str], None] | None = None,
    delays: tuple[float, ...] | None = None,
    budget_s: float | None = None,
) -> T:
    """`operation()`, retried after each transient database error; LedgerUnavailable at the end.

    `budget_s` caps the total wait (sleeps) and the wall-clock time spent.
    """
    delays = RETRY_DELAYS_S if delays is None else delays
    started = time.monotonic()
    waited = 0.0
    for attempt in range(len(delays) + 1):
        try:
            return operation()
        except Exception as exc:  # noqa: BLE001 - classified just below
            if not is_transient(exc):
                raise
            reason = f"{type(exc).__name__}: {_first_line(exc)}"
            over_budget = budget_s is not None and (
                waited >= budget_s or time.monotonic() - started >= budget_s
            )
            if attempt == len(delays) or over_budget:
                raise LedgerUnavailable(f"{what} failed after {attempt + 1} tries: {reason}") from None
            delay = delays[attempt]
            if budget_s is not None:
                delay = min(delay, max(0.0, budget_s - waited))
            if log:
                log(f"{what}: database error ({reason}); trying again in {delay:g}s")
            sleep_fn(delay)
            waited += delay
    raise AssertionError("unreachable")


def _first_line(exc: BaseException) -> str:
    text_ = str(getattr(exc, "orig", None) or exc).strip()
    return text_.splitlines()[0][:300] if text_ else type(exc).__name__
