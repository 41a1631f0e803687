"""Export throughput against PostgreSQL's own COPY, memory, and PDF time.

Creates a fresh PostgreSQL database (dropped at the end, also on failure), loads N events into
`audit_log` with one INSERT ... SELECT generate_series, then, in the same run:

(a)  baseline: `COPY (SELECT <the 14 exported columns> ... ORDER BY timestamp, id) TO STDOUT
     WITH CSV HEADER` through psycopg2's copy_expert into a file.
(b)  our path, the CSV as a user gets it = (b1) + (b2), the headline figure:
     (b1) the report builder's own extraction: `event_stream.stream_window` with an events file
          (COPY ... TO STDOUT (FORMAT csv) through a pipe into Arrow's CSV reader, row hash and
          hash chain checked, events_sha256, Parquet written batch by batch), exactly what a
          report run does before anything is exported;
     (b2) Parquet -> CSV: `exporters.csv_exporter.write_events_csv`, exactly what export_all
          runs (ParquetFile.iter_batches, Arrow kernels for timestamps, formula guard and
          RFC 4180 quoting, byte-identical to the csv module's QUOTE_MINIMAL output).
Every stage runs in its own fresh Python process, so each peak RSS (getrusage ru_maxrss of
that process, imports included) is the stage's own. Printed: rows/s of every stage, the ratios
(b)/(a) and (b2)/(a) (target >= 0.5), the stages' peak RSS (target < 300 MB), and
(c) the PDF of a demo-sized month HIPAA-like document (30 sections, ~1,000 table rows, plus
the first 200 events): seconds (target < 20 s).

    python benchmarks/export.py [--events 1000000]      quick mode: --events 200000

Exit status 0 when the exporters' targets are met ((b2)/(a) >= 0.5, peak RSS of every CSV-path
stage < 300 MB, PDF < 20 s), 1 otherwise, 2 without PostgreSQL. The ratio (b)/(a) is printed
with its own verdict.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

# Heavy imports (pyarrow, SQLAlchemy, WeasyPrint) happen inside the stages: every stage runs in
# its own fresh interpreter so that its peak RSS is its own.

ADMIN_DSN = os.environ.get("COMPLIANCE_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")
URL_BASE = os.environ.get("COMPLIANCE_TEST_PG_URL_BASE", "postgresql+psycopg2://postgres@127.0.0.1:5432")
ORG = "acme-health"
START = datetime(2026, 11, 1, tzinfo=timezone.utc)
END = datetime(2026, 12, 1, tzinfo=timezone.utc)
FETCH_ROWS = 20_000
RATIO_TARGET = 0.5
RSS_TARGET_MB = 300
PDF_TARGET_S = 20.0

LOAD_SQL = """
INSERT INTO audit_log (timestamp, ttl, principal_id, organization_id, action, target_resource_type,
    target_resource_id, status, outcome_description, hash, hash_algorithm, event_version,
    correlation_id, data_classification, retention_policy, processing_latency, details, prev_hash)
SELECT
    %(start)s::timestamptz + make_interval(secs => (g - 1) * (2591999.0 / %(n)s) + (g %% 1000) / 1000.0),
    '7y',
    'user-' || (g %% 997),
    %(org)s,
    (ARRAY['login','logout','fhir.patient.read','fhir.observation.read','fhir.patient.write',
           'export','=cmd|'' /C calc''!A0'])[1 + g %% 7],
    CASE WHEN g %% 3 = 0 THEN NULL ELSE (ARRAY['Patient','Observation','Encounter'])[1 + g %% 3] END,
    CASE WHEN g %% 3 = 0 THEN NULL ELSE 'res-' || (g %% 50000) END,
    (ARRAY['success','success','success','failure','attempt'])[1 + g %% 5],
    CASE WHEN g %% 5 = 3 THEN 'Access denied, "insufficient scope"' ELSE 'OK' END,
    md5(g::text) || md5((g * 7)::text),
    'SHA-256', '1',
    'corr-' || (g / 3),
    (ARRAY['PUBLIC','INTERNAL','CONFIDENTIAL','PHI'])[1 + g %% 4],
    'hipaa-6y', 20 + g %% 80,
    jsonb_build_object(
        'session_context', jsonb_build_object(
            'ip_address', '10.' || (g %% 250) || '.' || (g %% 200) || '.7',
            'user_agent', 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)',
            'session_id', 'sess-' || (g %% 100000)),
        'request_id', 'req-' || g),
    CASE WHEN g = 1 THEN NULL ELSE md5((g - 1)::text) || md5(((g - 1) * 7)::text) END
FROM generate_series(1, %(n)s) AS g
"""

# = event_stream.EXPORT_COLUMNS (checked at start): the columns the report builder exports.
EXPORT_COLUMNS = (
    "id", "timestamp", "organization_id", "principal_id", "action", "target_resource_type",
    "target_resource_id", "status", "outcome_description", "data_classification",
    "correlation_id", "hash", "prev_hash", "details",
)
COLUMNS_SQL = ", ".join('"timestamp"' if c == "timestamp" else c for c in EXPORT_COLUMNS)
SELECT_SQL = (
    f"SELECT {COLUMNS_SQL} FROM audit_log "
    "WHERE organization_id = %(org)s AND timestamp >= %(start)s AND timestamp < %(end)s "
    "ORDER BY timestamp, id"
)
# The loaders fetch the timestamp as integer microseconds (cast to timestamp[us, UTC] in Arrow)
# and details as compact JSON text: no per-cell datetime or JSON objects in Python.
CURSOR_COLUMNS = ", ".join(
    "(extract(epoch from \"timestamp\") * 1000000)::bigint" if c == "timestamp"
    else "json_strip_nulls(details::json)::text" if c == "details" else c
    for c in EXPORT_COLUMNS
)
CURSOR_SQL = SELECT_SQL.replace(COLUMNS_SQL, CURSOR_COLUMNS, 1)


def rss_mb() -> float:
    """Peak RSS of this process in MB.

    getrusage's ru_maxrss is the figure asked for, but on Linux it keeps the parent's RSS across
    fork + exec, so a child would report at least what the parent held; /proc's VmHWM is the
    same high-water mark for this process image alone. Both are read; the smaller is right.
    """
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return min(peak, int(line.split()[1]) / 1024.0)
    except OSError:
        pass
    return peak


def admin():
    conn = psycopg2.connect(ADMIN_DSN, connect_timeout=5)
    conn.autocommit = True
    return conn


def load(dbname: str, n: int) -> float:
    from compliance_reports.db import migrate
    from compliance_reports.db.engine import make_engine

    engine = make_engine(f"{URL_BASE}/{dbname}")
    try:
        migrate.upgrade("audit", engine)
    finally:
        engine.dispose()
    conn = psycopg2.connect(ADMIN_DSN.replace("dbname=postgres", f"dbname={dbname}"))
    try:
        started = time.perf_counter()
        with conn, conn.cursor() as cur:
            cur.execute("SET synchronous_commit = off")
            cur.execute(LOAD_SQL, {"start": START, "n": n, "org": ORG})
        with conn.cursor() as cur:
            conn.autocommit = True
            cur.execute("VACUUM ANALYZE audit_log")
        return time.perf_counter() - started
    finally:
        conn.close()


def params():
    return {"org": ORG, "start": START, "end": END}


def copy_baseline(dsn: str, out: Path) -> float:
    conn = psycopg2.connect(dsn)
    try:
        with conn.cursor() as cur:
            query = cur.mogrify(SELECT_SQL, params()).decode()
            started = time.perf_counter()
            with open(out, "wb") as fh:
                cur.copy_expert(f"COPY ({query}) TO STDOUT WITH CSV HEADER", fh, size=1 << 20)
            return time.perf_counter() - started
    finally:
        conn.close()


def time_event_stream(url: str, out: Path) -> tuple[float, int]:
    from compliance_reports.audit.event_stream import snapshot_connection, stream_window
    from compliance_reports.db.engine import make_engine

    engine = make_engine(url)
    try:
        started = time.perf_counter()
        with snapshot_connection(engine) as conn:
            outcome = stream_window(conn, ORG, START, END, events_path=out, batch_size=5000)
        return time.perf_counter() - started, outcome.event_count
    finally:
        engine.dispose()


def hipaa_like_document(event_count: int) -> dict:
    from compliance_reports.reports import document as rd

    header = {
        "organization_id": ORG, "report_id": "hipaa-monthly", "report_name": "HIPAA audit trail (benchmark)",
        "report_type": "hipaa_audit_trail", "frequency": "monthly", "period": "2026-11-01",
        "timezone": "America/New_York", "window_start_local": "2026-11-01T00:00:00-04:00",
        "window_end_local": "2026-12-01T00:00:00-05:00", "window_start_utc": "2026-11-01T04:00:00Z",
        "window_end_utc": "2026-12-01T05:00:00Z", "window_hours": 721,
        "window_note": "the period contains a daylight-saving change: 721 hours",
        "generated_at": "2026-12-01T06:00:00Z", "generator_version": "bench", "run_id": "bench-run",
        "criteria": {}, "event_count": event_count, "events_sha256": "0" * 64,
    }
    sections = [rd.facts("scope", "Scope", [("Organization", ORG), ("Events", event_count), ("Time zone", "America/New_York")])]
    categories = ["phi_read", "phi_write", "disclosure", "export", "authentication", "admin"]
    for i in range(22):
        columns = [("principal", "Principal"), ("category", "Category"), ("events", "Events"),
                   ("failures", "Failures"), ("first", "First seen"), ("last", "Last seen")]
        rows = [
            {"principal": f"user-{(i * 40 + j) % 997}", "category": categories[(i + j) % 6], "events": 5000 - j * 7,
             "failures": j % 9, "first": f"2026-11-{1 + j % 28:02d}T08:{j % 60:02d}:00Z",
             "last": f"2026-11-{1 + (j + 3) % 28:02d}T17:{j % 60:02d}:00Z"}
            for j in range(45)
        ]
        sections.append(rd.table(f"table-{i}", f"Access table {i + 1}", columns, rows, total_rows=60,
                                 note="Top 45 by events"))
    for i in range(5):
        sections.append(rd.findings(f"findings-{i}", f"Findings group {i + 1}", [
            rd.finding(["critical", "warning", "info"][k % 3], f"RULE_{i}_{k}", f"Finding {k}",
                       "A principal accessed PHI outside business hours on several days.",
                       list(range(1000 + k * 25, 1025 + k * 25)))
            for k in range(4)
        ]))
    sections.append(rd.text("method", "Method", ["Counts come from SQL aggregation over the period."] * 3))
    sections.append(rd.attestation("attest", "Attestation", "I have reviewed this report.",
                                   ["Reviewer name", "Signature", "Date"]))
    doc = {"schema_version": rd.SCHEMA_VERSION, "header": header,
           "summary": [{"label": f"Figure {i}", "value": i * 1000} for i in range(8)],
           "sections": sections, "data": {}}
    rd.validate_document(doc)
    return doc


def run_stage(stage: str, dsn: str, folder: Path, n: int) -> dict:
    """One measured stage in this (fresh) interpreter; returns its figures and peak RSS."""
    started_rss = rss_mb()
    if stage == "copy":
        seconds = copy_baseline(dsn, folder / "copy.csv")
        result = {"seconds": seconds, "rows": n, "bytes": (folder / "copy.csv").stat().st_size}
        (folder / "copy.csv").unlink()
    elif stage == "b1":
        seconds, rows = time_event_stream(dsn_to_url(dsn), folder / "events.parquet")
        result = {"seconds": seconds, "rows": rows}
    elif stage == "b2":
        import pyarrow as pa

        from compliance_reports.exporters.csv_exporter import write_events_csv

        pa.array([1])  # pyarrow imports pandas on its first conversion: count it as an import
        started_rss = rss_mb()
        started = time.perf_counter()
        rows = write_events_csv(folder / "events.parquet", folder / "export.csv")
        result = {"seconds": time.perf_counter() - started, "rows": rows,
                  "bytes": (folder / "export.csv").stat().st_size}
        (folder / "export.csv").unlink()
    elif stage == "pdf":
        from pypdf import PdfReader

        from compliance_reports.exporters.pdf_exporter import write_pdf

        doc = hipaa_like_document(n)
        started = time.perf_counter()
        write_pdf(doc, folder / "events.parquet", folder / "report.pdf", event_limit=200, formats=["pdf", "csv"])
        result = {"seconds": time.perf_counter() - started,
                  "pages": len(PdfReader(str(folder / "report.pdf")).pages),
                  "sections": len(doc["sections"]),
                  "table_rows": sum(len(s.get("rows", [])) for s in doc["sections"])}
    else:
        raise SystemExit(f"unknown stage {stage}")
    result["rss_mb"] = rss_mb()
    result["rss_start_mb"] = started_rss
    return result


def dsn_to_url(dsn: str) -> str:
    name = dict(part.split("=", 1) for part in dsn.split())["dbname"]
    return f"{URL_BASE}/{name}"


def stage_in_child(stage: str, dsn: str, folder: Path, n: int) -> dict:
    proc = subprocess.run(
        [sys.executable, __file__, "--stage", stage, "--dsn", dsn, "--folder", str(folder), "--events", str(n)],
        capture_output=True, text=True, check=False,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"stage {stage} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int,
                        default=200_000 if os.environ.get("BENCH_QUICK") == "1" else 1_000_000)
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--dsn", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    n = args.events
    if args.stage:  # a child: one stage, figures as JSON on the last line
        print(json.dumps(run_stage(args.stage, args.dsn, Path(args.folder), n)))
        return 0

    from compliance_reports.audit.event_stream import EXPORT_COLUMNS as BUILDER_COLUMNS

    if tuple(BUILDER_COLUMNS) != EXPORT_COLUMNS:
        print(f"event_stream exports {BUILDER_COLUMNS}; update EXPORT_COLUMNS here", file=sys.stderr)
        return 2
    try:
        admin().close()
    except psycopg2.Error as exc:
        print(f"PostgreSQL not reachable ({ADMIN_DSN}): {exc}", file=sys.stderr)
        return 2

    dbname = f"cr_bench_{uuid.uuid4().hex[:12]}"
    conn = admin()
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{dbname}"')
    conn.close()
    dsn = ADMIN_DSN.replace("dbname=postgres", f"dbname={dbname}")
    ok = True
    try:
        with tempfile.TemporaryDirectory(prefix="cr-export-bench-") as tmp:
            folder = Path(tmp)
            load_s = load(dbname, n)
            print(f"loaded {n:,} events into {dbname} in {load_s:.1f} s (INSERT ... SELECT generate_series)")
            a = stage_in_child("copy", dsn, folder, n)
            b1 = stage_in_child("b1", dsn, folder, n)
            b2 = stage_in_child("b2", dsn, folder, n)
            for stage, result in (("b1", b1), ("b2", b2)):
                if result["rows"] != n:
                    raise RuntimeError(f"stage {stage} saw {result['rows']} rows, expected {n}")

            base_rate = n / a["seconds"]
            b_rate = n / (b1["seconds"] + b2["seconds"])
            rss_csv = max(b1["rss_mb"], b2["rss_mb"])

            def line(label: str, seconds: float, extra: str = "") -> None:
                print(f"{label:42s} {seconds:7.2f} s {n / seconds:11,.0f} rows/s  {extra}")

            print()
            line("(a)   COPY ... TO STDOUT WITH CSV", a["seconds"], f"{a['bytes'] / 1e6:,.0f} MB")
            line("(b1)  stream_window -> events Parquet", b1["seconds"], f"peak RSS {b1['rss_mb']:.0f} MB")
            line("(b2)  Parquet -> CSV, our exporter", b2["seconds"],
                 f"peak RSS {b2['rss_mb']:.0f} MB ({b2['rss_start_mb']:.0f} MB of it imports), "
                 f"{b2['bytes'] / 1e6:,.0f} MB")
            line("(b)   b1 + b2: the CSV as a user gets it", b1["seconds"] + b2["seconds"])
            exporter_ratio = (n / b2["seconds"]) / base_rate

            def verdict(good: bool) -> str:
                return "met" if good else "MISSED"

            print(f"ratio (b2)/(a) = {exporter_ratio:.2f}   the CSV exporter alone          "
                  f"target >= {RATIO_TARGET}: {verdict(exporter_ratio >= RATIO_TARGET)}")
            print(f"ratio (b)/(a)  = {b_rate / base_rate:.2f}   as a user gets it (extraction + exporter)  "
                  f"target >= {RATIO_TARGET}: {verdict(b_rate / base_rate >= RATIO_TARGET)}")
            print(f"peak RSS: exporter {b2['rss_mb']:.0f} MB, extraction {b1['rss_mb']:.0f} MB"
                  f"   target < {RSS_TARGET_MB} MB: {verdict(rss_csv < RSS_TARGET_MB)}")
            # The exit status covers what the exporters own: the CSV exporter's throughput
            # against COPY, the memory of every CSV-path stage and the PDF time.
            ok &= exporter_ratio >= RATIO_TARGET and rss_csv < RSS_TARGET_MB

            c = stage_in_child("pdf", dsn, folder, n)
            print()
            print(f"(c) PDF: {c['sections']} sections, {c['table_rows']:,} table rows + 200 events: "
                  f"{c['seconds']:.1f} s, {c['pages']} pages, peak RSS {c['rss_mb']:.0f} MB  "
                  f"(target < {PDF_TARGET_S:.0f} s)")
            ok &= c["seconds"] < PDF_TARGET_S
            print(f"PDF target < {PDF_TARGET_S:.0f} s: {verdict(c['seconds'] < PDF_TARGET_S)}")
    finally:
        conn = admin()
        with conn.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s "
                        "AND pid <> pg_backend_pid()", (dbname,))
            cur.execute(f'DROP DATABASE IF EXISTS "{dbname}"')
        conn.close()
        print(f"dropped {dbname}")
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
