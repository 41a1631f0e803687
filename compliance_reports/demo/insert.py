"""How the demo traffic reaches `audit_log`: the column order of every generated row, the chain
head each organization's new rows continue from, and one bulk insert per database (SQLite through
the driver's executemany, PostgreSQL through COPY FROM STDIN, anything else through SQLAlchemy),
committing in batches and reporting progress after each.
"""

from __future__ import annotations

import io
import json
from datetime import datetime
from itertools import islice

from sqlalchemy import Engine, func, select

from compliance_reports.db.schema import audit_log

# Column order of every generated row (all audit_log columns except the database-assigned id).
INSERT_COLUMNS: tuple[str, ...] = (
    "timestamp", "ttl", "principal_id", "organization_id", "action", "target_resource_type",
    "target_resource_id", "status", "outcome_description", "hash", "hash_algorithm",
    "event_version", "correlation_id", "data_classification", "retention_policy",
    "processing_latency", "archived_at", "details", "prev_hash",
)
_QUOTED_COLUMNS = ", ".join(f'"{c}"' for c in INSERT_COLUMNS)


def _chain_heads(engine: Engine, org_ids: list[str], range_start: datetime) -> dict[str, str | None]:
    """Hash of each organization's newest row; refuses a range that would interleave."""
    heads: dict[str, str | None] = {}
    c = audit_log.c
    with engine.connect() as conn:
        for org_id in org_ids:
            row = conn.execute(
                select(c.timestamp, c.hash)
                .where(c.organization_id == org_id)
                .order_by(c.timestamp.desc(), c.id.desc())
                .limit(1)
            ).first()
            if row is None:
                continue
            if row.timestamp >= range_start:
                raise ValueError(
                    f"organization {org_id} already has audit events up to "
                    f"{row.timestamp.isoformat()}; seeding from {range_start.isoformat()} would "
                    "interleave with them and break its hash chain (seed later days, another "
                    "organization count, or an empty database)"
                )
            heads[org_id] = row.hash
    return heads


def _max_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.max(audit_log.c.id))).scalar() or 0


def _insert_sqlite(engine, rows, batch_size, total, progress) -> int:
    sql = (f"INSERT INTO audit_log ({_QUOTED_COLUMNS}) "
           f"VALUES ({', '.join('?' * len(INSERT_COLUMNS))})")
    done = 0
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        conn.commit()
        cur = conn.cursor()
        old = cur.execute("PRAGMA synchronous").fetchone()[0]
        cur.execute("PRAGMA synchronous=OFF")
        try:
            while True:
                cur.executemany(sql, islice(rows, batch_size))
                n = cur.rowcount
                conn.commit()
                if n <= 0:
                    break
                done += n
                if progress:
                    progress(done, total)
        except BaseException:
            conn.rollback()
            raise
        finally:
            cur.execute(f"PRAGMA synchronous={int(old)}")
            cur.close()
    finally:
        raw.close()
    return done


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(rows: list[tuple]) -> str:
    """Rows as PostgreSQL COPY text format: tab-separated, \\N for NULL, specials escaped."""
    width = len(INSERT_COLUMNS)
    text = "\n".join(
        ["\t".join(["\\N" if v is None else v if type(v) is str else str(v) for v in row]) for row in rows]
    ) + "\n"
    # A field holding a tab, newline, CR or backslash would shift or break its line: checked
    # once over the whole batch (the only backslashes are the NULL markers, unless details
    # JSON holds escapes), escaped per field then.
    nulls = sum(row.count(None) for row in rows)
    if (text.count("\\") != nulls or "\r" in text or text.count("\n") != len(rows)
            or text.count("\t") != len(rows) * (width - 1)):
        text = "".join(
            "\t".join("\\N" if v is None else (v if type(v) is str else str(v)).translate(_COPY_ESCAPES)
                      for v in row) + "\n"
            for row in rows
        )
    return text


def _insert_postgresql(engine, rows, batch_size, total, progress) -> int:
    """COPY FROM STDIN in batches; identity values follow the order of the COPY data, which is
    chain order. Timestamps arrive as naive-UTC text (``_rows`` mode "sqlite") marked +00."""
    sql = f"COPY audit_log ({_QUOTED_COLUMNS}) FROM STDIN"
    done = 0
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        conn.commit()
        try:
            with conn.cursor() as cur:
                while True:
                    batch = [(r[0] + "+00", *r[1:]) for r in islice(rows, batch_size)]
                    if not batch:
                        break
                    cur.execute("SET LOCAL synchronous_commit TO OFF")
                    cur.copy_expert(sql, io.StringIO(_copy_text(batch)))
                    conn.commit()
                    done += len(batch)
                    if progress:
                        progress(done, total)
        except BaseException:
            conn.rollback()
            raise
    finally:
        raw.close()
    return done


def _insert_generic(engine, rows, batch_size, total, progress) -> int:
    done = 0
    while True:
        batch = [dict(zip(INSERT_COLUMNS, r)) for r in islice(rows, batch_size)]
        if not batch:
            return done
        for b in batch:
            b["details"] = json.loads(b["details"])
        with engine.begin() as conn:
            conn.execute(audit_log.insert(), batch)
        done += len(batch)
        if progress:
            progress(done, total)

