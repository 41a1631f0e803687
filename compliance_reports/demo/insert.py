"""How the demo traffic reaches `audit_log`: the column order of every generated row, the chain
head each organization's new rows continue from, and one bulk insert per database (SQLite through
the driver's executemany, PostgreSQL through COPY FROM STDIN, anything else through SQLAlchemy),
committing in batches and reporting progress after each.
"""

from __future__ import annotations

import io
import json
import sys
from concurrent.futures import ThreadPoolExecutor, wait
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


def _tuples_copy_data(rows: list[tuple]) -> bytes:
    """Rows in INSERT_COLUMNS order, timestamps as naive-UTC text, as COPY data."""
    return _copy_text([(r[0] + "+00", *r[1:]) for r in rows]).encode()


# Stands for NULL in lines written for COPY by the generator itself (``_rows`` mode "copy"):
# no generated value holds a NUL character (PostgreSQL text cannot store one), so this marker,
# unlike \N, stays distinct from every value until the batch has been escaped.
COPY_NULL = "\x00"


def _lines_copy_data(lines: list[str]) -> bytes:
    """Generated COPY lines (tab-separated, newline-terminated, NULL as COPY_NULL) as COPY data.

    Escaping is done over the whole batch, which is sound because the separators are checked
    first: with exactly one newline and len(INSERT_COLUMNS) - 1 tabs per line, no value holds
    either, and every backslash or CR left belongs to a value. Lines are encoded one by one and
    the batch handled as UTF-8 bytes: one line with a CJK name would otherwise widen the whole
    joined str to two bytes a character, and every pass over it with it (UTF-8 never uses an
    ASCII byte inside a multi-byte character, so the byte checks see what the text holds).
    """
    data = b"".join([line.encode() for line in lines])
    if data.count(b"\n") != len(lines) or data.count(b"\t") != len(lines) * (len(INSERT_COLUMNS) - 1):
        raise ValueError("a generated audit value holds a tab or a newline")
    if b"\\" in data:
        data = data.replace(b"\\", b"\\\\")
    if b"\r" in data:
        data = data.replace(b"\r", b"\\r")
    return data.replace(COPY_NULL.encode(), b"\\N")


def _insert_postgresql(engine, rows, batch_size, total, progress, copy_data=_tuples_copy_data) -> int:
    """COPY FROM STDIN in batches; identity values follow the order of the COPY data, which is
    chain order. `copy_data` turns a batch of `rows` into COPY data: by default rows are tuples
    in INSERT_COLUMNS order with naive-UTC text timestamps (``_rows`` mode "sqlite");
    ``_lines_copy_data`` takes the lines of ``_rows`` mode "copy".

    The next batch is generated while a thread copies the previous one: psycopg2 releases the
    GIL while libpq sends the data and waits for the server, so generation (this process) and
    the server's insert (its own process) run on two cores. Batches are still copied and
    committed one after another, in order; on a failure the batch in flight is waited for, so
    what is left is exactly the committed batches.
    """
    sql = f"COPY audit_log ({_QUOTED_COLUMNS}) FROM STDIN"
    # The copying thread needs the GIL a few times a batch (to start the COPY, read the data,
    # commit) while the generator holds it, and waits up to a switch interval each time with
    # the server idle: with the default 5 ms, up to ~20 ms a batch against ~70 ms of server
    # work for 10,000 rows. Restored afterwards.
    switch = sys.getswitchinterval()
    sys.setswitchinterval(min(switch, 0.0005))
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        conn.commit()

        def copy(data: bytes) -> None:
            with conn.cursor() as cur:
                cur.execute("SET LOCAL synchronous_commit TO OFF")
                # One read of the whole batch: each read from the file takes the GIL, which
                # the generating thread holds for up to a switch interval at a time.
                cur.copy_expert(sql, io.BytesIO(data), size=len(data) + 1)
            conn.commit()

        done = 0
        in_flight = None  # (future, rows) of the batch being copied
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="seed-copy") as pool:
            try:
                while True:
                    batch = list(islice(rows, batch_size))
                    data = copy_data(batch) if batch else b""
                    if in_flight is not None:
                        in_flight[0].result()
                        done += in_flight[1]
                        in_flight = None
                        if progress:
                            progress(done, total)
                    if not batch:
                        break
                    in_flight = (pool.submit(copy, data), len(batch))
            except BaseException:
                if in_flight is not None:
                    wait([in_flight[0]])
                conn.rollback()
                raise
    finally:
        sys.setswitchinterval(switch)
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

