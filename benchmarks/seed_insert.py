"""Demo seed throughput into SQLite, end to end (target: at least 50,000 rows/s).

Seeds a fresh temporary SQLite database with `seed_audit_log` (generation + hashing + insert)
and prints rows, seconds and rows/s. As a same-run baseline it also times a bare DBAPI
`executemany` of pre-built tuples of the same shape into the same table (same pragmas, same
batch size), so the ratio shows what generating and hashing add on top of the insert itself.
Informational: the exit status is 0 either way.

    python benchmarks/seed_insert.py [--rows 300000] [--repeat 1]
"""

from __future__ import annotations

import argparse
import sqlite3
import tempfile
import time
from datetime import date
from itertools import islice
from pathlib import Path

from compliance_reports.db import migrate
from compliance_reports.db.engine import make_engine
from compliance_reports.demo import seed as demo_seed

TARGET = 50_000
ORGS = 3
EVENTS_PER_DAY = 2000


def migrated(path: Path):
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade_all(engine, engine)
    return engine


def run_seed(folder: Path, options: demo_seed.SeedOptions, n: int) -> demo_seed.SeedResult:
    engine = migrated(folder / f"seed-{n}.db")
    try:
        return demo_seed.seed_audit_log(engine, options)
    finally:
        engine.dispose()


def run_bare(folder: Path, rows: list[tuple], batch_size: int, n: int) -> float:
    path = folder / f"bare-{n}.db"
    migrated(path).dispose()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    columns = ", ".join('"' + c + '"' for c in demo_seed.INSERT_COLUMNS)
    sql = (f"INSERT INTO audit_log ({columns}) "
           f"VALUES ({', '.join('?' * len(demo_seed.INSERT_COLUMNS))})")
    started = time.perf_counter()
    it = iter(rows)
    while True:
        batch = list(islice(it, batch_size))
        if not batch:
            break
        conn.executemany(sql, batch)
        conn.commit()
    seconds = time.perf_counter() - started
    count = conn.execute("SELECT count(*) FROM audit_log").fetchone()[0]
    conn.close()
    assert count == len(rows), (count, len(rows))
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000, help="about this many rows (default 300000)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each; the best is reported")
    args = parser.parse_args()

    days = max(1, round(args.rows / (ORGS * EVENTS_PER_DAY)))
    options = demo_seed.SeedOptions(orgs=ORGS, days=days, events_per_day=EVENTS_PER_DAY,
                                    end_date=date(2026, 3, 31))
    rows = options.total_rows
    print(f"demo seed into SQLite: {ORGS} orgs x {days} days x {EVENTS_PER_DAY} events/day = {rows:,} rows")

    with tempfile.TemporaryDirectory(prefix="seed-bench-") as tmp:
        folder = Path(tmp)
        seeds = [run_seed(folder, options, i) for i in range(max(1, args.repeat))]
        best = min(seeds, key=lambda r: r.seconds)
        assert best.rows == rows, (best.rows, rows)

        prebuilt = list(demo_seed._rows(options, None, "sqlite"))  # not timed
        bare = min(run_bare(folder, prebuilt, options.batch_size, i) for i in range(max(1, args.repeat)))
    bare_rate = rows / bare

    meets = best.rows_per_second >= TARGET
    print(f"  seed_audit_log (generate + hash + insert): {best.seconds:.2f} s, "
          f"{best.rows_per_second:,.0f} rows/s")
    print(f"  baseline bare executemany of pre-built tuples: {bare:.2f} s, {bare_rate:,.0f} rows/s")
    print(f"  ratio seed / bare insert: {best.rows_per_second / bare_rate:.2f} "
          f"(bare insert is {bare_rate / best.rows_per_second:.1f}x faster)")
    print(f"  target {TARGET:,} rows/s: {'MET' if meets else 'NOT MET'}")


if __name__ == "__main__":
    main()
