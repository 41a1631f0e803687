"""Export throughput against PostgreSQL's own COPY, memory, and PDF time.

Creates a fresh PostgreSQL database (dropped at the end, also on failure), loads N events into
`audit_log` with one INSERT ... SELECT generate_series, then, in the same run:

(a)  baseline: `COPY (SELECT <the 14 exported columns> ... ORDER BY timestamp, id) TO STDOUT
     WITH CSV HEADER` through psycopg2's copy_expert into a file.
(b)  our path = (b1) + (b2), the headline figure:
     (b1) PostgreSQL -> Parquet through a server-side (named) psycopg2 cursor, 20,000 rows per
          FETCH, appended to a Parquet file with `event_stream.parquet_schema()` (timestamps
          typed timestamp[us, UTC], fetched as integer microseconds; details fetched as
          compact JSON text, `json_strip_nulls(details::json)`, which is exact here because
          the generated details hold no null values, and compact like the details event_stream
          writes);
     (b2) Parquet -> CSV: `exporters.csv_exporter.write_events_csv`, exactly what export_all
          runs (ParquetFile.iter_batches, Arrow kernels for timestamps, formula guard and
          RFC 4180 quoting, byte-identical to the csv module's QUOTE_MINIMAL output).
(b') the same with (b1') instead of (b1): the rows streamed out of PostgreSQL with
     `COPY ... TO STDOUT (FORMAT csv)` through a pipe into Arrow's streaming CSV reader and on
     into the same Parquet file; shown as the faster loader design a builder could use.
Every stage runs in its own fresh Python process, so each peak RSS (getrusage ru_maxrss of
that process, imports included) is the stage's own. Printed: rows/s of every stage, the ratios
(b)/(a), (b')/(a) and (b2)/(a) (target >= 0.5), the stages' peak RSS (target < 300 MB), and
(c) the PDF of a demo-sized month HIPAA-like document (30 sections, ~1,000 table rows, plus
the first 200 events): seconds (target < 20 s). The report builder's own pass
(event_stream.stream_window: hash-chain check and digest per row) is timed with
--event-stream, for information.

    python benchmarks/export.py [--events 1000000]      quick mode: --events 200000

Exit status 0 when the exporters' targets are met ((b2)/(a) >= 0.5, peak RSS of every CSV-path
stage < 300 MB, PDF < 20 s), 1 otherwise, 2 without PostgreSQL. The end-to-end ratios (b)/(a)
and (b')/(a) are printed with their own verdicts; they are bounded by the loader, not the
exporter.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import threading
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


def postgres_to_parquet(dsn: str, out: Path) -> tuple[float, int]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from compliance_reports.audit.event_stream import parquet_schema

    schema = parquet_schema()
    conn = psycopg2.connect(dsn)
    rows = 0
    try:
        started = time.perf_counter()
        with conn.cursor(name=f"bench_{uuid.uuid4().hex[:8]}") as cur, \
                pq.ParquetWriter(out, schema, compression="zstd") as writer:
            cur.itersize = FETCH_ROWS
            cur.execute(CURSOR_SQL, params())
            while True:
                batch = cur.fetchmany(FETCH_ROWS)
                if not batch:
                    break
                columns = list(zip(*batch))
                arrays = []
                for field, values in zip(schema, columns):
                    if field.name == "timestamp":
                        arrays.append(pa.array(values, pa.int64()).cast(field.type))
                    else:
                        arrays.append(pa.array(values, field.type))
                writer.write_table(pa.Table.from_arrays(arrays, schema=schema))
                rows += len(batch)
        conn.commit()
        return time.perf_counter() - started, rows
    finally:
        conn.close()


def postgres_to_parquet_copy(dsn: str, out: Path) -> tuple[float, int]:
    """(b1'): COPY ... TO STDOUT (FORMAT csv) -> pipe -> Arrow streaming CSV reader -> Parquet."""
    import pyarrow as pa
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    from compliance_reports.audit.event_stream import parquet_schema

    schema = parquet_schema()
    types = {f.name: (pa.int64() if f.name == "timestamp" else f.type) for f in schema}
    conn = psycopg2.connect(dsn)
    rows = 0
    errors: list[BaseException] = []
    try:
        with conn.cursor() as cur:
            query = cur.mogrify(CURSOR_SQL, params()).decode()
        read_fd, write_fd = os.pipe()

        def produce() -> None:
            try:
                with os.fdopen(write_fd, "wb", buffering=1 << 20) as sink, conn.cursor() as cur:
                    cur.copy_expert(f"COPY ({query}) TO STDOUT WITH (FORMAT csv)", sink, size=1 << 20)
            except BaseException as exc:  # noqa: BLE001 - reported by the consumer
                errors.append(exc)

        started = time.perf_counter()
        producer = threading.Thread(target=produce, daemon=True)
        producer.start()
        with os.fdopen(read_fd, "rb") as source, pq.ParquetWriter(out, schema, compression="zstd") as writer:
            reader = pcsv.open_csv(
                source,
                read_options=pcsv.ReadOptions(column_names=[f.name for f in schema], block_size=1 << 20),
                parse_options=pcsv.ParseOptions(newlines_in_values=True),
                convert_options=pcsv.ConvertOptions(
                    column_types=types, strings_can_be_null=True, quoted_strings_can_be_null=False,
                    null_values=[""],
                ),
            )
            for batch in reader:
                arrays = [batch.column(i).cast(f.type) if f.name == "timestamp" else batch.column(i)
                          for i, f in enumerate(schema)]
                writer.write_batch(pa.RecordBatch.from_arrays(arrays, schema=schema))
                rows += batch.num_rows
        producer.join()
        if errors:
            raise errors[0]
        conn.commit()
        return time.perf_counter() - started, rows
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
        seconds, rows = postgres_to_parquet(dsn, folder / "events.parquet")
        result = {"seconds": seconds, "rows": rows}
    elif stage == "b1c":
        seconds, rows = postgres_to_parquet_copy(dsn, folder / "events-copy.parquet")
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
    elif stage == "compare":
        import pyarrow.parquet as pq

        a, b = (pq.ParquetFile(folder / name) for name in ("events.parquet", "events-copy.parquet"))
        same = a.metadata.num_rows == b.metadata.num_rows
        for x, y in zip(a.iter_batches(batch_size=65_536), b.iter_batches(batch_size=65_536)):
            same = same and x.equals(y)
        result = {"same": same, "rows": a.metadata.num_rows}
    elif stage == "event_stream":
        seconds, rows = time_event_stream(dsn_to_url(dsn), folder / "stream.parquet")
        result = {"seconds": seconds, "rows": rows}
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
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--event-stream", action="store_true",
                        help="also time the report builder's pass (event_stream.stream_window)")
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
            b1c = stage_in_child("b1c", dsn, folder, n)
            for stage, result in (("b1", b1), ("b2", b2), ("b1c", b1c)):
                if result["rows"] != n:
                    raise RuntimeError(f"stage {stage} saw {result['rows']} rows, expected {n}")
            same = stage_in_child("compare", dsn, folder, n)["same"]

            base_rate = n / a["seconds"]
            b_rate = n / (b1["seconds"] + b2["seconds"])
            bc_rate = n / (b1c["seconds"] + b2["seconds"])
            rss_csv = max(b1["rss_mb"], b2["rss_mb"], b1c["rss_mb"])

            def line(label: str, seconds: float, extra: str = "") -> None:
                print(f"{label:42s} {seconds:7.2f} s {n / seconds:11,.0f} rows/s  {extra}")

            print()
            line("(a)   COPY ... TO STDOUT WITH CSV", a["seconds"], f"{a['bytes'] / 1e6:,.0f} MB")
            line("(b1)  PostgreSQL -> Parquet, cursor", b1["seconds"], f"peak RSS {b1['rss_mb']:.0f} MB")
            line("(b1') PostgreSQL -> Parquet, COPY stream", b1c["seconds"],
                 f"peak RSS {b1c['rss_mb']:.0f} MB, same table as b1: {same}")
            line("(b2)  Parquet -> CSV, our exporter", b2["seconds"],
                 f"peak RSS {b2['rss_mb']:.0f} MB ({b2['rss_start_mb']:.0f} MB of it imports), "
                 f"{b2['bytes'] / 1e6:,.0f} MB")
            line("(b)   b1 + b2", b1["seconds"] + b2["seconds"])
            line("(b')  b1' + b2", b1c["seconds"] + b2["seconds"])
            exporter_ratio = (n / b2["seconds"]) / base_rate

            def verdict(good: bool) -> str:
                return "met" if good else "MISSED"

            print(f"ratio (b2)/(a) = {exporter_ratio:.2f}   the CSV exporter alone          "
                  f"target >= {RATIO_TARGET}: {verdict(exporter_ratio >= RATIO_TARGET)}")
            print(f"ratio (b)/(a)  = {b_rate / base_rate:.2f}   cursor loader + CSV exporter   "
                  f"target >= {RATIO_TARGET}: {verdict(b_rate / base_rate >= RATIO_TARGET)} (end to end)")
            print(f"ratio (b')/(a) = {bc_rate / base_rate:.2f}   COPY-stream loader + exporter  "
                  f"target >= {RATIO_TARGET}: {verdict(bc_rate / base_rate >= RATIO_TARGET)} (end to end)")
            print(f"peak RSS: exporter {b2['rss_mb']:.0f} MB, loaders {b1['rss_mb']:.0f} / {b1c['rss_mb']:.0f} MB"
                  f"   target < {RSS_TARGET_MB} MB: {verdict(rss_csv < RSS_TARGET_MB)}")
            # The exit status covers what the exporters own: the CSV exporter's throughput
            # against COPY, the memory of every CSV-path stage and the PDF time.
            ok &= exporter_ratio >= RATIO_TARGET and rss_csv < RSS_TARGET_MB and same

            if args.event_stream:
                es = stage_in_child("event_stream", dsn, folder, n)
                line("(info) event_stream.stream_window", es["seconds"],
                     f"peak RSS {es['rss_mb']:.0f} MB (hash-chain check and digest per row)")

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
