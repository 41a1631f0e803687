"""Deterministic demo audit traffic of a healthcare SaaS, inserted into `audit_log`.

Plain Python (no Dagster). The same `SeedOptions` always produce the same rows and hashes:
every random choice comes from a `random.Random` derived from the seed and the organization,
and the only use of the clock is `end_date=None` meaning "today (UTC)".

What one organization gets each UTC day, `events_per_day` events in total, spread with a
diurnal load in the organization's own time zone (mostly 07:00-19:00 local):
FHIR reads and writes (PHI, some "access denied"), logins with bursts of failures, logouts and
MFA challenges, bulk exports, disclosures and shares with a recipient and purpose, admin and
audit-configuration changes, break-glass access, after-hours PHI reads (22:00-05:00 local),
consents, data-subject requests with their completions days later (some never, some after more
than a month), cross-border transfers, and about one recorded breach per 30 days (some notified
more than 72 h after awareness). Two "curious" principals per organization read far more
distinct patients than their colleagues.

Every row carries `hash = row_hash(row)` and `prev_hash` = the hash of the previous row of its
organization in (timestamp, id) order. Rows are inserted in chain order, so ids ascend with it
even where two timestamps are equal.

Re-seeding rule: seeding appends. For an organization that already has rows, the new rows chain
from its newest existing row, which is only sound when every new row is later than that row; so
seeding is refused with a ValueError (before anything is written) when the seeded range starts at
or before an organization's newest existing event. Seeding later days onto an earlier seed works.
Rows are committed in batches of `batch_size`; a failure part-way leaves the committed batches.

Module map: `organization` plans each day and makes the frequent traffic; one mixin per kind of
traffic (`authentication`, `clinical`, `disclosures`, `administration`, `gdpr`, `breaches`) makes
the rarer kinds from the tables of `vocabulary`; this module turns the events into hashed,
chained rows, and `insert` writes them.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

from sqlalchemy import Engine, select, update

from compliance_reports.audit.hashing import HASH_ALGORITHM, js_json
from compliance_reports.db.schema import audit_log
from compliance_reports.demo.insert import (
    COPY_NULL,
    INSERT_COLUMNS,
    _chain_heads,
    _insert_generic,
    _insert_postgresql,
    _insert_sqlite,
    _lines_copy_data,
    _max_id,
)
from compliance_reports.demo.organization import Organization
from compliance_reports.demo.vocabulary import _EPOCH, _H, _MMSS, _MS3, _JsonCache

__all__ = [
    "DEMO_ORGANIZATIONS",
    "INSERT_COLUMNS",
    "SeedOptions",
    "SeedResult",
    "demo_organizations",
    "generate_events",
    "seed_audit_log",
    "tamper_rows",
    "text_progress",
]

# (organization_id, display name, IANA time zone)
DEMO_ORGANIZATIONS: list[tuple[str, str, str]] = [
    ("org-stmarys", "St Mary's Hospital", "America/New_York"),
    ("org-nordklinik", "Nordklinik Berlin", "Europe/Berlin"),
    ("org-harbourview", "Harbourview Health", "Australia/Sydney"),
    ("org-lakeside", "Lakeside Family Clinic", "America/Los_Angeles"),
    ("org-sanjeevani", "Sanjeevani Hospital Pune", "Asia/Kolkata"),
]
_EXTRA_TIMEZONES = [
    "UTC", "America/Chicago", "Asia/Tokyo", "Europe/London", "America/Sao_Paulo",
    "Africa/Johannesburg", "Europe/Madrid", "Pacific/Auckland",
]


EVENT_VERSION = "1.0"


@dataclass(frozen=True)
class SeedOptions:
    orgs: int = 3
    days: int = 35
    events_per_day: int = 2000  # per organization
    seed: int = 42
    tamper: int = 0
    end_date: date | None = None  # last UTC day seeded; None -> today (UTC)
    batch_size: int = 10_000

    def __post_init__(self) -> None:
        for name in ("orgs", "days", "events_per_day", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.tamper, int) or self.tamper < 0:
            raise ValueError(f"tamper must be a non-negative integer, got {self.tamper!r}")
        if self.tamper > self.total_rows:
            raise ValueError(f"tamper ({self.tamper}) exceeds the number of seeded rows ({self.total_rows})")
        if self.end_date is not None and (
            not isinstance(self.end_date, date) or isinstance(self.end_date, datetime)
        ):
            raise ValueError(f"end_date must be a date, got {self.end_date!r}")

    @property
    def total_rows(self) -> int:
        return self.orgs * self.days * self.events_per_day

    def day_range(self) -> tuple[date, date]:
        """(first, last) UTC day seeded."""
        last = self.end_date or datetime.now(timezone.utc).date()
        return last - timedelta(days=self.days - 1), last


@dataclass
class SeedResult:
    rows: int
    organizations: list[str]
    seconds: float
    rows_per_second: float
    tampered_ids: list[int] = field(default_factory=list)
    first_timestamp: datetime | None = None
    last_timestamp: datetime | None = None


def demo_organizations(n: int) -> list[tuple[str, str, str]]:
    """The first `n` demo organizations; beyond the named ones, `org-demo-1`, `org-demo-2`..."""
    orgs = list(DEMO_ORGANIZATIONS[:n])
    for i in range(1, n - len(DEMO_ORGANIZATIONS) + 1):
        tz = _EXTRA_TIMEZONES[(i - 1) % len(_EXTRA_TIMEZONES)]
        orgs.append((f"org-demo-{i}", f"Demo Organization {i}", tz))
    return orgs


# ------------------------------------------------------------------ rows


def _rows(
    options: SeedOptions,
    start_hashes: Mapping[str, str | None] | None,
    mode: str,
    stats: dict | None = None,
) -> Iterator[tuple]:
    """Rows as tuples in INSERT_COLUMNS order, per organization in chain order.

    mode "sqlite": timestamp as SQLAlchemy's naive-UTC SQLite text; "datetime": aware datetime;
    "copy": instead of tuples, the rows as lines for ``insert._lines_copy_data`` (the SQLite
    text with "+00", NULL as COPY_NULL), written here to skip a tuple per row.
    """
    first_day, _ = options.day_range()
    start_hashes = start_hashes or {}
    jc = _JsonCache({None: "null", "": "null"})
    sha256 = hashlib.sha256
    alg, ver = HASH_ALGORITHM, EVENT_VERSION
    as_text = mode == "sqlite"
    as_copy = mode == "copy"
    nul = COPY_NULL
    alg_ver = alg + "\t" + ver
    epoch, td = _EPOCH, timedelta
    for index, (org_id, _name, tz_name) in enumerate(demo_organizations(options.orgs)):
        org = Organization(index, org_id, tz_name, options.seed, options.days)
        jorg = js_json(org_id)
        prev = start_hashes.get(org_id)
        hour = None
        first_ms = last_ms = None
        for day_index in range(options.days):
            day = first_day + timedelta(days=day_index)
            events = org.day_events(day_index, day, options.events_per_day)
            if events:
                if first_ms is None:
                    first_ms = events[0][0]
                last_ms = events[-1][0]
            for t, p in events:
                hk, rem = divmod(t, _H)
                if hk != hour:  # events come in time order: the hour's text changes 24 times a day
                    hour = hk
                    dt = epoch + td(hours=hk)
                    iso_hour, sql_hour = dt.strftime("%Y-%m-%dT%H:"), dt.strftime("%Y-%m-%d %H:")
                sec, msr = divmod(rem, 1000)
                mmss, ms3 = _MMSS[sec], _MS3[msr]
                principal, action, rtype, rid, status, outcome, corr, dclass, ret, ttl, lat, det = p
                # One f-string per row (a single allocation) rather than a chain of "+".
                if rid:
                    canonical = (
                        f'action:{jc[action]}|organizationId:{jorg}|outcomeDescription:{jc[outcome]}'
                        f'|principalId:{jc[principal]}|status:{jc[status]}|targetResourceId:"{rid}"'
                        f'|targetResourceType:{jc[rtype]}|timestamp:"{iso_hour}{mmss}.{ms3}Z"'
                    )
                else:
                    canonical = (
                        f'action:{jc[action]}|organizationId:{jorg}|outcomeDescription:{jc[outcome]}'
                        f'|principalId:{jc[principal]}|status:{jc[status]}|targetResourceId:null'
                        f'|targetResourceType:{jc[rtype]}|timestamp:"{iso_hour}{mmss}.{ms3}Z"'
                    )
                h = sha256(canonical.encode()).hexdigest()
                if as_copy:
                    # ttl, target_resource_id and prev_hash are the only generated values
                    # that may be None; archived_at always is.
                    # (a join of a tuple: an f-string this long compiles to a slower join of a list)
                    yield "\t".join((
                        f"{sql_hour}{mmss}.{ms3}000+00", nul if ttl is None else ttl, principal, org_id,
                        action, rtype, nul if rid is None else rid, status, outcome, h, alg_ver, corr,
                        dclass, ret, str(lat), nul, det, nul if prev is None else prev,
                    )) + "\n"
                    prev = h
                    continue
                ts = f"{sql_hour}{mmss}.{ms3}000" if as_text else epoch + td(milliseconds=t)
                yield (ts, ttl, principal, org_id, action, rtype, rid, status, outcome, h, alg,
                       ver, corr, dclass, ret, lat, None, det, prev)
                prev = h
        if stats is not None and first_ms is not None:
            stats[org_id] = (first_ms, last_ms)


def generate_events(
    options: SeedOptions, start_hashes: Mapping[str, str | None] | None = None
) -> Iterator[dict]:
    """The seeded rows as audit_log column dicts (no id), each organization in chain order.

    `timestamp` is an aware UTC datetime, `details` a dict; `hash` and `prev_hash` are set, the
    first row of an organization chaining from `start_hashes[org]` (default None).
    """
    loads = json.loads
    for row in _rows(options, start_hashes, "datetime"):
        d = dict(zip(INSERT_COLUMNS, row))
        d["details"] = loads(d["details"])
        yield d


# ------------------------------------------------------------------ database


def seed_audit_log(
    engine: Engine,
    options: SeedOptions = SeedOptions(),
    progress: Callable[[int, int], None] | None = None,
) -> SeedResult:
    """Append the demo traffic to audit_log; see the module docstring for the re-seeding rule."""
    orgs = [o[0] for o in demo_organizations(options.orgs)]
    first_day, _ = options.day_range()
    range_start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=timezone.utc)
    heads = _chain_heads(engine, orgs, range_start)
    before = _max_id(engine) if options.tamper else 0
    total = options.total_rows
    dialect = engine.dialect.name
    stats: dict[str, tuple[int, int]] = {}
    started = time.perf_counter()
    if dialect == "sqlite":
        rows = _rows(options, heads, "sqlite", stats)
        done = _insert_sqlite(engine, rows, options.batch_size, total, progress)
    elif dialect == "postgresql":
        lines = _rows(options, heads, "copy", stats)
        done = _insert_postgresql(engine, lines, options.batch_size, total, progress, _lines_copy_data)
    else:
        rows = _rows(options, heads, "datetime", stats)
        done = _insert_generic(engine, rows, options.batch_size, total, progress)
    seconds = time.perf_counter() - started
    tampered = tamper_rows(engine, options.tamper, options.seed, min_id=before + 1) if options.tamper else []
    firsts = [v[0] for v in stats.values()]
    lasts = [v[1] for v in stats.values()]
    return SeedResult(
        rows=done,
        organizations=orgs,
        seconds=seconds,
        rows_per_second=done / seconds if seconds > 0 else float("inf"),
        tampered_ids=tampered,
        first_timestamp=_EPOCH + timedelta(milliseconds=min(firsts)) if firsts else None,
        last_timestamp=_EPOCH + timedelta(milliseconds=max(lasts)) if lasts else None,
    )


def tamper_rows(
    engine: Engine,
    k: int,
    seed: int,
    organization_id: str | None = None,
    *,
    min_id: int | None = None,
) -> list[int]:
    """Alter k rows (outcome, status or action) without fixing their hash; their ids, ascending.

    Deterministic for the seed and the table's content. `min_id` limits the choice to rows with
    id >= min_id (seed_audit_log uses it to touch only the rows it inserted).
    """
    if k <= 0:
        return []
    c = audit_log.c
    query = select(c.id).order_by(c.id)
    if organization_id is not None:
        query = query.where(c.organization_id == organization_id)
    if min_id is not None:
        query = query.where(c.id >= min_id)
    rng = random.Random(f"tamper:{seed}:{organization_id or '*'}")
    with engine.begin() as conn:
        ids = list(conn.execute(query).scalars())
        if k > len(ids):
            raise ValueError(f"cannot tamper {k} rows: only {len(ids)} candidate rows")
        chosen = sorted(rng.sample(ids, k))
        rows = conn.execute(
            select(c.id, c.action, c.status, c.outcome_description)
            .where(c.id.in_(chosen)).order_by(c.id)
        ).all()
        for row in rows:
            kind = rng.randrange(3)
            if kind == 0:
                new = "Routine access" if row.outcome_description != "Routine access" else "Routine access."
                values = {"outcome_description": new}
            elif kind == 1:
                values = {"status": "failure" if row.status == "success" else "success"}
            else:
                values = {"action": "auth.logout" if row.action != "auth.logout" else "auth.login"}
            conn.execute(update(audit_log).where(c.id == row.id).values(**values))
    return chosen


def text_progress(stream=None, width: int = 30) -> Callable[[int, int], None]:
    """A plain-text progress bar for `seed_audit_log(progress=...)`."""
    out = stream or sys.stderr

    def show(done: int, total: int) -> None:
        filled = int(width * done / total) if total else width
        out.write(f"\r[{'#' * filled}{' ' * (width - filled)}] {done:,}/{total:,} rows")
        if done >= total:
            out.write("\n")
        out.flush()

    return show
