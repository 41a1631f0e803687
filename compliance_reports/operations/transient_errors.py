"""Which failures are outages worth retrying, and how long a step waits between tries.

One decision, `classify(exc)`, used by every Dagster step that touches the databases or the
artifact store (report assets, publish ops) and by the failure-alert sensor:

- **database unavailable**: SQLAlchemy `OperationalError` / `InterfaceError` /
  `DisconnectionError` / pool `TimeoutError`, a DBAPI error whose connection was invalidated,
  and the raw psycopg2 / sqlite3 `OperationalError`s (server down, restarting, connection
  refused or reset, "database is locked"). Not: SQLite's "no such table / column" or a syntax
  error (a schema that was never migrated does not heal by waiting).
- **artifact store unavailable**: `OSError` on the store (unwritable folder, full disk, stale
  mount, connection refused or reset, timeouts), botocore's endpoint, connection and
  read-timeout errors, and S3 replies that mean "try again" (5xx, SlowDown, RequestTimeout,
  Throttling). Not: a missing file or key, an existing key (never overwritten), a path that
  is not a folder, access refused by S3 policy.
- everything else, notably bad input (validation errors, a missing report, a period that has
  not ended), is permanent: retrying would only repeat it.

An exception counts as transient when it, or any exception it was raised from
(`__cause__` / `__context__`), is one of the transient kinds, so wrapping an outage in a
domain error keeps it retryable. No Dagster import: the Dagster layer turns the verdict into
`RetryRequested`.
"""

from __future__ import annotations

import errno
import sqlite3
from dataclasses import dataclass
from typing import Callable, Iterator

from compliance_reports.delivery.backoff import backoff_delay

DATABASE = "database_unavailable"
ARTIFACT_STORE = "artifact_store_unavailable"
PERMANENT = "permanent"

# SQLite reports schema problems as OperationalError too; these never heal by waiting.
_SQLITE_PERMANENT = ("no such table", "no such column", "syntax error", "has no column named")
# OSErrors that describe the request, not the store's health.
_PERMANENT_OS_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError)
_PERMANENT_ERRNOS = {errno.ENAMETOOLONG, errno.EINVAL, errno.ELOOP}
_S3_RETRY_CODES = {
    "SlowDown", "RequestTimeout", "RequestTimeTooSkewed", "InternalError", "ServiceUnavailable",
    "Throttling", "ThrottlingException", "RequestLimitExceeded", "503", "500", "502", "504",
}


@dataclass(frozen=True)
class Verdict:
    transient: bool
    kind: str  # database_unavailable | artifact_store_unavailable | permanent
    reason: str  # one line naming the error, for logs and alerts


@dataclass(frozen=True)
class StepRetry:
    """How a Dagster step retries a transient error: capped exponential backoff with jitter.

    The default waits about 10, 20, 40, 80, 120 and 120 seconds (each jittered down to half):
    an outage of several minutes is outlasted inside the run; a longer one fails the run and
    the schedule re-requests the period after its cool-down.
    """

    max_retries: int = 6
    initial_s: float = 10.0
    multiplier: float = 2.0
    max_delay_s: float = 120.0

    def delay(self, retry_number: int, rand: Callable[[], float] | None = None) -> float:
        """Seconds before retry `retry_number + 1` (retry_number 0 = after the first failure)."""
        return backoff_delay(retry_number, initial=self.initial_s, multiplier=self.multiplier,
                             max_delay=self.max_delay_s, jitter="equal", rand=rand)


STEP_RETRY = StepRetry()


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or (None if current.__suppress_context__ else current.__context__)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if len(text) > 300:
        text = text[:297] + "..."
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _database_kind(exc: BaseException) -> str | None:
    from sqlalchemy import exc as sa_exc

    if isinstance(exc, (sa_exc.DisconnectionError, sa_exc.TimeoutError)):
        return DATABASE
    if isinstance(exc, sa_exc.DBAPIError):
        if exc.connection_invalidated:
            return DATABASE
        if isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError)):
            return _database_kind(exc.orig) if exc.orig is not None else DATABASE
        return None
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return None if any(marker in text for marker in _SQLITE_PERMANENT) else DATABASE
    try:
        import psycopg2
    except ImportError:  # pragma: no cover - psycopg2 is a dependency
        return None
    if isinstance(exc, (psycopg2.OperationalError, psycopg2.InterfaceError)):
        return DATABASE
    return None


def _store_kind(exc: BaseException) -> str | None:
    from botocore import exceptions as boto_exc

    if isinstance(exc, (boto_exc.ConnectionError, boto_exc.HTTPClientError)):
        return ARTIFACT_STORE
    if isinstance(exc, boto_exc.ClientError):
        error = exc.response.get("Error", {}) if isinstance(exc.response, dict) else {}
        status = (exc.response.get("ResponseMetadata", {}) if isinstance(exc.response, dict) else {}).get(
            "HTTPStatusCode"
        )
        code = str(error.get("Code", ""))
        if code in _S3_RETRY_CODES or (isinstance(status, int) and status >= 500):
            return ARTIFACT_STORE
        return None
    if isinstance(exc, OSError):
        if isinstance(exc, _PERMANENT_OS_ERRORS) or exc.errno in _PERMANENT_ERRNOS:
            return None
        return ARTIFACT_STORE
    return None


def classify(exc: BaseException) -> Verdict:
    """Transient (an outage of the database or the artifact store) or permanent."""
    for link in _chain(exc):
        kind = _database_kind(link) or _store_kind(link)
        if kind is not None:
            what = "database unavailable" if kind == DATABASE else "artifact store unavailable"
            return Verdict(True, kind, f"{what}: {_one_line(link)}")
    return Verdict(False, PERMANENT, _one_line(exc))


def is_transient(exc: BaseException) -> bool:
    return classify(exc).transient
