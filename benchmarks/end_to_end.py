"""A HIPAA monthly report of one organization-month, end to end, against the database by hand.

    python benchmarks/end_to_end.py [--events 1000000] [--formats csv,parquet,pdf]
                                                             quick: --events 200000 (or BENCH_QUICK=1)

In a fresh PostgreSQL database (dropped at the end, also on failure) and a fresh DAGSTER_HOME:

1. seed: ``demo seed`` traffic of one organization (org-stmarys, America/New_York) for the 31
   UTC days of March 2026, N events in all, through ``seed_audit_log`` (COPY); rows/s printed;
2. ours, the user's path, each step its own process (peak RSS: the VmHWM of the step's process
   and of each process it starts, such as the PDF's, see _process_peaks.py): ``compliance-reports
   run stmarys-bench --period 2026-03-01`` (the Dagster run: stream pass, integrity, aggregates,
   stored document and events file), then the publish run (``publish_now``: csv, parquet and pdf
   rendered and delivered to a local storage destination; ``--formats`` another list, e.g.
   ``csv,parquet,pdf,json``, with which the PDF shortens its long tables: exporters/pdf_cap.py);
3. the baseline, same run: ``\\copy (SELECT <the exported columns> ... ORDER BY timestamp, id)
   TO <file> CSV HEADER`` through psql, plus five hand GROUP BYs through psql (by action, status,
   principal, data classification and local hour);
4. breakdown: ``build_report`` once more in-process (its phases: stream = fetch, row hash,
   chain, digest and events Parquet; integrity; sections = the aggregate SQL).

Printed: times, the ratio ours / (\\copy + GROUP BYs) (target <= 3) and peak RSS (target
< 400 MB). Informational: exit status 0 unless a step fails (2 without PostgreSQL).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import date
from pathlib import Path

import psycopg2

import _process_peaks as process_peaks  # benchmarks/, the script's folder

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
BIN = Path(sys.executable).parent
ADMIN_DSN = os.environ.get("COMPLIANCE_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")
URL_BASE = os.environ.get("COMPLIANCE_TEST_PG_URL_BASE", "postgresql+psycopg2://postgres@127.0.0.1:5432")
REPORT_ID = "stmarys-bench"
PERIOD = "2026-03-01"
ORG = "org-stmarys"
WINDOW = ("2026-03-01 05:00:00+00", "2026-04-01 04:00:00+00")  # March in America/New_York
RATIO_TARGET = 3.0
RSS_TARGET_MB = 400

CONFIG = f"""
kind: destination
name: bench-folder
type: storage
provider: local
base_path: delivered
key_template: "{{organization_id}}/{{report_id}}/{{period}}/{{filename}}"
---
kind: report
id: {REPORT_ID}
name: St Mary's monthly HIPAA audit trail (benchmark)
organization_id: {ORG}
report_type: hipaa_audit_trail
schedule: {{frequency: monthly, time: "06:00", timezone: America/New_York, day_of_month: 1}}
formats: [FORMATS]
destinations: [bench-folder]
"""

EXPORT_SELECT = (
    'SELECT id, "timestamp", organization_id, principal_id, action, target_resource_type, '
    "target_resource_id, status, outcome_description, data_classification, correlation_id, hash, "
    "prev_hash, details FROM audit_log WHERE organization_id = '{org}' AND \"timestamp\" >= '{a}' "
    "AND \"timestamp\" < '{b}' ORDER BY \"timestamp\", id"
)
WHERE = "organization_id = '{org}' AND \"timestamp\" >= '{a}' AND \"timestamp\" < '{b}'"
GROUP_BYS = [
    "SELECT action, count(*) FROM audit_log WHERE {w} GROUP BY action",
    "SELECT status, count(*) FROM audit_log WHERE {w} GROUP BY status",
    "SELECT principal_id, count(*), count(DISTINCT target_resource_id) FROM audit_log WHERE {w} "
    "GROUP BY principal_id",
    "SELECT data_classification, count(*) FROM audit_log WHERE {w} GROUP BY data_classification",
    "SELECT extract(hour FROM \"timestamp\" AT TIME ZONE 'America/New_York') AS h, count(*) "
    "FROM audit_log WHERE {w} GROUP BY h",
]

PUBLISH = """
import json, sys
from dagster import DagsterInstance
from compliance_reports.orchestration.manual_run import publish_now
with DagsterInstance.get() as instance:
    out = publish_now(instance, "monthly", sys.argv[1], app_db_url=sys.argv[2], audit_db_url=sys.argv[2],
                      log_level="WARNING")
print(json.dumps({"status": out["status"], "messages": out["messages"],
                  "files": [f["filename"] for f in (out["published"] or {}).get("files", [])]}))
"""

BREAKDOWN = """
import json, sys
from datetime import datetime, timezone
from pathlib import Path
from compliance_reports.config import store
from compliance_reports.db.engine import make_engine
from compliance_reports.reports.builder import build_report
engine = make_engine(sys.argv[1])
report = store.get_report(engine, sys.argv[2])
result = build_report(engine, engine, report, sys.argv[3], run_id=None,
                      generated_at=datetime.now(timezone.utc), events_path=Path(sys.argv[4]))
print(json.dumps({"timings": result.timings, "events": result.event_count}))
"""


def psql(dsn: str, command: str) -> float:
    started = time.perf_counter()
    subprocess.run(["psql", dsn, "-q", "-v", "ON_ERROR_STOP=1", "-c", command], check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    quick = os.environ.get("BENCH_QUICK") == "1"
    parser.add_argument("--events", type=int, default=200_000 if quick else 1_000_000)
    parser.add_argument("--no-breakdown", action="store_true", help="skip the in-process phase timing")
    parser.add_argument("--formats", default="csv,parquet,pdf", help="the report's formats, comma-separated")
    args = parser.parse_args()
    try:
        psycopg2.connect(ADMIN_DSN, connect_timeout=5).close()
    except psycopg2.OperationalError as exc:
        print(f"PostgreSQL not reachable: {exc}", file=sys.stderr)
        return 2

    from compliance_reports.db import migrate
    from compliance_reports.db.engine import make_engine
    from compliance_reports.demo.seed import SeedOptions, seed_audit_log

    name = f"bench_e2e_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(ADMIN_DSN)
    admin.autocommit = True
    admin.cursor().execute(f'CREATE DATABASE "{name}"')
    url = f"{URL_BASE}/{name}"
    dsn = f"host=127.0.0.1 port=5432 user=postgres dbname={name}"
    try:
        with tempfile.TemporaryDirectory(prefix="bench-e2e-") as tmp:
            folder = Path(tmp)
            env = {**os.environ, "PYTHONPATH": str(REPO), "COMPLIANCE_DB_URL": url, "AUDIT_DB_URL": url,
                   "COMPLIANCE_DATA_DIR": str(folder / "data"), "DAGSTER_HOME": str(folder / "dagster")}
            (folder / "dagster").mkdir()
            (folder / "dagster" / "dagster.yaml").write_text((REPO / "deploy" / "dagster.local.yaml").read_text())
            engine = make_engine(url)
            migrate.upgrade_all(engine, engine)
            per_day = max(1, round(args.events / 31))
            options = SeedOptions(orgs=1, days=31, events_per_day=per_day, end_date=date(2026, 3, 31),
                                  batch_size=50_000)
            seeded = seed_audit_log(engine, options)
            engine.dispose()
            print(f"HIPAA monthly end to end, {seeded.rows:,} events seeded (1 organization, March 2026)")
            print(f"  seed into PostgreSQL (generate + hash + COPY): {seeded.seconds:.1f} s, "
                  f"{seeded.rows_per_second:,.0f} rows/s")
            psql(dsn, "VACUUM ANALYZE audit_log")
            cli = str(BIN / "compliance-reports")
            config = CONFIG.replace("FORMATS", ", ".join(f.strip() for f in args.formats.split(",")))
            for group, text in zip(("destinations", "reports"), config.split("---")):
                (folder / f"{group}.yaml").write_text(text)
                subprocess.run([cli, group, "apply", "-f", str(folder / f"{group}.yaml")], env=env,
                               check=True, stdout=subprocess.DEVNULL)

            run = process_peaks.run([cli, "run", REPORT_ID, "--period", PERIOD, "--json"], env)
            run_s, run_rss = run.seconds, run.peak_any_mb
            run_id = json.loads(run.stdout)["run_id"]
            publish = process_peaks.run([sys.executable, "-c", PUBLISH, run_id, url], env)
            pub_s, pub_rss = publish.seconds, publish.peak_any_mb
            published = json.loads(publish.stdout)
            if published["status"] != "SUCCESS":
                raise SystemExit(f"publish failed: {published['messages']}")
            ours = run_s + pub_s

            window = {"org": ORG, "a": WINDOW[0], "b": WINDOW[1]}
            copy_s = psql(dsn, f"\\copy ({EXPORT_SELECT.format(**window)}) TO '{folder / 'copy.csv'}' CSV HEADER")
            where = WHERE.format(**window)
            group_s = sum(psql(dsn, q.format(w=where)) for q in GROUP_BYS)
            rows = sum(1 for _ in open(folder / "copy.csv", "rb")) - 1  # noqa: SIM115 - counted once
            baseline = copy_s + group_s

            print(f"  window rows: {rows:,}; files: {', '.join(published['files'])}")
            print(f"  ours: run {run_s:.1f} s (peak RSS {run_rss:.0f} MB) + publish {pub_s:.1f} s "
                  f"(peak RSS {pub_rss:.0f} MB) = {ours:.1f} s")
            for label, measured in (("run", run), ("publish", publish)):
                command, mb = measured.largest_descendant
                print(f"    {label}: its process {measured.peak_mb:.0f} MB"
                      + (f", the largest it started {mb:.0f} MB ({command})" if command else ""))
            print(f"  baseline: \\copy to csv {copy_s:.2f} s + five GROUP BYs {group_s:.2f} s = {baseline:.2f} s")
            ratio = ours / baseline
            print(f"  ratio ours / baseline: {ratio:.1f}x (target <= {RATIO_TARGET:.0f}x: "
                  f"{'MET' if ratio <= RATIO_TARGET else 'NOT MET'}); peak RSS {max(run_rss, pub_rss):.0f} MB "
                  f"(target < {RSS_TARGET_MB} MB: {'MET' if max(run_rss, pub_rss) < RSS_TARGET_MB else 'NOT MET'})")
            if not args.no_breakdown:
                breakdown = process_peaks.run([sys.executable, "-c", BREAKDOWN, url, REPORT_ID, PERIOD,
                                               str(folder / "events.parquet")], env)
                t = json.loads(breakdown.stdout)["timings"]
                print(f"  breakdown (build_report in-process, again): stream pass {t['stream']:.1f} s "
                      f"({t['stream'] / copy_s:.1f}x the \\copy), integrity {t['integrity']:.2f} s, "
                      f"aggregates {t['sections']:.1f} s ({t['sections'] / group_s:.1f}x the GROUP BYs), "
                      f"total {t['total']:.1f} s; the rest of the run (Dagster, document, store) "
                      f"{max(0.0, run_s - t['total']):.1f} s; publish {pub_s:.1f} s")
    finally:
        admin.cursor().execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            (name,))
        admin.cursor().execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
