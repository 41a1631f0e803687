"""The publish step of a HIPAA monthly report, against copying and CSV-writing its events by hand.

    python benchmarks/publish.py [--events 200000]      quick: --events 50000 (or BENCH_QUICK=1)

In a fresh SQLite database and storage root (a temporary folder, removed at the end):

1. setup, not timed: ``demo seed`` traffic of one organization (org-stmarys) for the 31 UTC
   days of March 2026, N events in all; the report (csv, parquet, pdf, xlsx and json, delivered
   to a local storage destination) is built and stored with ``build_and_store`` (document and
   events Parquet file in the local artifact store);
2. ours, in its own process (peak RSS: VmHWM of that process and of the PDF process it starts,
   see _process_peaks.py): ``resume_publish``, the plain-Python publish that
   the publish job runs step by step: ``export_and_store`` (render every format, store files and
   the signed manifest), ``fetch_publication`` and the delivery to the storage destination;
3. the baseline, same run, in its own process: one copy of the stored events file plus Arrow's
   CSV writer over it (native code, no Python per row): the least a publish that writes the
   events as CSV and stores them once has to do.

Printed: the phases, the total, the ratio ours / baseline and peak RSS (target < 400 MB) of the
publishing process and of the PDF process it starts (export_all renders the PDF there).
Informational: exit status 0 unless a step fails.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from datetime import date, datetime, timezone
from pathlib import Path

import _process_peaks as process_peaks  # benchmarks/, the script's folder

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
REPORT_ID = "stmarys-publish-bench"
PERIOD = "2026-03-01"
ORG = "org-stmarys"
RSS_TARGET_MB = 400

CONFIG = f"""
kind: destination
name: bench-folder
type: storage
provider: local
base_path: delivered
key_template: "{{organization_id}}/{{report_id}}/{{period}}/{{run_id}}/{{filename}}"
---
kind: report
id: {REPORT_ID}
name: St Mary's monthly HIPAA audit trail (publish benchmark)
organization_id: {ORG}
report_type: hipaa_audit_trail
schedule: {{frequency: monthly, time: "06:00", timezone: America/New_York, day_of_month: 1}}
formats: [csv, parquet, pdf, xlsx, json]
destinations: [bench-folder]
"""

PUBLISH = """
import json, sys, time
from pathlib import Path
from compliance_reports.artifacts.store import open_store
from compliance_reports.config import store as config_store
from compliance_reports.db.engine import make_engine
from compliance_reports.delivery.dispatcher import deliver_publication
from compliance_reports.exporters import publishing
from compliance_reports.settings import load_settings

settings = load_settings()
engine = make_engine(settings.compliance_db_url)
store = open_store(engine)
report = config_store.get_report(engine, sys.argv[1])
destinations = [config_store.get_destination(engine, n) for n in report.destinations]
timings = {}
original_export, original_fetch = publishing.export_and_store, publishing.fetch_publication

def timed(name, fn):
    def run(*a, **k):
        started = time.perf_counter()
        try:
            return fn(*a, **k)
        finally:
            timings[name] = time.perf_counter() - started
    return run

publishing.export_and_store = timed("export_and_store", original_export)
publishing.fetch_publication = timed("fetch_publication", original_fetch)
started = time.perf_counter()
published, outcomes = publishing.resume_publish(engine, store, report, sys.argv[2], destinations,
                                                Path(sys.argv[3]), manifest_key=b"k" * 32)
timings["total"] = time.perf_counter() - started
timings["deliver"] = timings["total"] - timings["export_and_store"] - timings["fetch_publication"]
print(json.dumps({"timings": timings, "statuses": [o.status for o in outcomes],
                  "files": [[f.filename, f.size] for f in published.files]}))
"""

BASELINE = """
import shutil, sys
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
shutil.copyfile(sys.argv[1], sys.argv[2])
pf = pq.ParquetFile(sys.argv[1])
with pcsv.CSVWriter(sys.argv[3], pf.schema_arrow) as writer:
    for batch in pf.iter_batches(batch_size=65536):
        writer.write_batch(batch)
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    quick = os.environ.get("BENCH_QUICK") == "1"
    parser.add_argument("--events", type=int, default=50_000 if quick else 200_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-publish-") as tmp:
        folder = Path(tmp)
        data = folder / "data"
        env = {**os.environ, "PYTHONPATH": str(REPO), "COMPLIANCE_DATA_DIR": str(data),
               "COMPLIANCE_DB_URL": f"sqlite:///{data / 'bench.db'}"}
        os.environ.update(env)  # this process sets up with the same settings

        from compliance_reports.artifacts.store import open_store
        from compliance_reports.config import store as config_store
        from compliance_reports.db import migrate
        from compliance_reports.db.engine import make_engine
        from compliance_reports.demo.seed import SeedOptions, seed_audit_log
        from compliance_reports.reports.run import build_and_store
        from compliance_reports.settings import load_settings

        settings = load_settings()
        engine = make_engine(settings.compliance_db_url)
        migrate.upgrade_all(engine, engine)
        per_day = max(1, round(args.events / 31))
        seeded = seed_audit_log(engine, SeedOptions(orgs=1, days=31, events_per_day=per_day,
                                                    end_date=date(2026, 3, 31), batch_size=50_000))
        cli = str(Path(sys.executable).parent / "compliance-reports")
        for group, text in zip(("destinations", "reports"), CONFIG.split("---")):
            (folder / f"{group}.yaml").write_text(text)
            subprocess.run([cli, group, "apply", "-f", str(folder / f"{group}.yaml")], env=env,
                           check=True, stdout=subprocess.DEVNULL)
        report = config_store.get_report(engine, REPORT_ID)
        store = open_store(engine)
        scratch = folder / "build"
        scratch.mkdir()
        stored = build_and_store(audit_engine=engine, app_engine=engine, store=store, report=report,
                                 period=PERIOD, run_id="bench-run", generated_at=datetime.now(timezone.utc),
                                 scratch=scratch, checkpoint_key=None)
        engine.dispose()
        events_file = Path(stored.events_location)
        print(f"HIPAA monthly publish, {seeded.rows:,} events seeded (1 organization, March 2026), "
              f"{stored.build.event_count:,} in the period; events file {events_file.stat().st_size / 1e6:.1f} MB")

        publish = process_peaks.run([sys.executable, "-c", PUBLISH, REPORT_ID, PERIOD,
                                     str(folder / "publish")], env)
        pub_s, pub_rss = publish.seconds, publish.peak_any_mb
        result = json.loads(publish.stdout)
        if any(s != "sent" for s in result["statuses"]):
            raise SystemExit(f"delivery did not go through: {result['statuses']}")
        baseline = process_peaks.run([sys.executable, "-c", BASELINE, str(events_file),
                                      str(folder / "copy.parquet"), str(folder / "copy.csv")], env)
        base_s, base_rss = baseline.seconds, baseline.peak_mb
        t = result["timings"]
        print("  files: " + ", ".join(f"{name} ({size / 1e6:.1f} MB)" for name, size in result["files"]))
        print(f"  ours: publish {pub_s:.1f} s in its process (export_and_store {t['export_and_store']:.1f} s, "
              f"fetch {t['fetch_publication']:.2f} s, deliver {t['deliver']:.2f} s)")
        command, pdf_mb = publish.largest_descendant
        print(f"  peak RSS: publishing process {publish.peak_mb:.0f} MB, largest process it started "
              f"{pdf_mb:.0f} MB ({command or 'none'}), "
              f"largest {pub_rss:.0f} MB (target < {RSS_TARGET_MB} MB: "
              f"{'MET' if pub_rss < RSS_TARGET_MB else 'NOT MET'})")
        print(f"  baseline: copy of the events file + Arrow CSV writer {base_s:.1f} s (peak RSS {base_rss:.0f} MB)")
        print(f"  ratio ours / baseline: {pub_s / base_s:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
