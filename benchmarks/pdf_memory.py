"""Peak RSS and time of the PDF process for the demo's HIPAA monthly report.

    python benchmarks/pdf_memory.py [--rounds 3] [--code TREE ...]

Setup, not timed: the demo seed (2 organizations, 65 days to 2026-12-01, 600 events a day, as
compliance_reports_tests/exporters/test_pdf_demo.py) in a temporary SQLite database, and the
HIPAA monthly report of November 2026 built from it with its events file (formats pdf, csv and
json: 200 listed events, tables of at most 200 rows, 32 pages).

Then, for each round and each source tree given with --code (default: this checkout), in turn:
a fresh process, started in that tree (`python -c` puts its working directory first on
sys.path), imports that tree's code and does what export_all does for a long PDF,
`pdf_process.start(...)` then `.result()`. Printed: the PDF process's peak RSS, the peak RSS of
the process that started it (which renders the HTML when the tree's pdf_process does), and the
wall time from start to the written file. Peaks are VmHWM, each process's own: the ru_maxrss of
a process also counts what its parent had resident when it started it (Linux keeps the larger
high-water mark across the exec), so RUSAGE_CHILDREN, printed for comparison, reports at least
the caller's size at the start of the PDF process. Compare two trees in the same run, e.g. an
export of the base commit and this checkout: `--code /tmp/base --code .`.
"""

from __future__ import annotations

import argparse
import pickle
import subprocess
import sys
import tempfile
from datetime import date
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

WORKER = r"""
import pickle, resource, sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[1])
folder = Path(sys.argv[2])

def peak_mb():
    return int(next(l for l in open("/proc/self/status") if l.startswith("VmHWM:")).split()[1]) / 1024

document = pickle.loads((folder / "document.pkl").read_bytes())
from compliance_reports.exporters import pdf_cap, pdf_process
# the PDF process writes its own VmHWM (in kB) once its file is written
pdf_process._CHILD += (
    "open(" + repr(str(folder / "hwm")) + ", 'w').write(next(l for l in open('/proc/self/status')"
    " if l.startswith('VmHWM:')).split()[1])\n")
formats = ["pdf", "csv", "json"]
names = pdf_cap.published_names(document["header"], formats)
started = time.perf_counter()
child = pdf_process.start(document, folder / "events.parquet", True, folder / "report.pdf", 200,
                          formats, pdf_cap.DEFAULT_TABLE_ROW_LIMIT, names)
child.result()
seconds = time.perf_counter() - started
child.stop()
pdf_peak = int((folder / "hwm").read_text()) / 1024
rusage_peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(f"{pdf_peak:.0f} {rusage_peak:.0f} {peak_mb():.0f} {seconds:.2f}")
"""


def build(folder: Path) -> None:
    sys.path.insert(0, str(REPO))
    from compliance_reports.config.models import ReportConfig
    from compliance_reports.db import migrate
    from compliance_reports.db.engine import make_engine
    from compliance_reports.demo.seed import SeedOptions, seed_audit_log
    from compliance_reports.reports.builder import build_report
    from compliance_reports_tests.exporters.test_pdf_demo import GENERATED_AT, HIPAA

    engine = make_engine(f"sqlite:///{folder / 'demo.db'}")
    migrate.upgrade_all(engine, engine)
    seed_audit_log(engine, SeedOptions(orgs=2, days=65, events_per_day=600, end_date=date(2026, 12, 1)))
    built = build_report(engine, engine, ReportConfig.model_validate(HIPAA), "2026-11-01",
                         run_id="run-demo", generated_at=GENERATED_AT, events_path=folder / "events.parquet")
    engine.dispose()
    (folder / "document.pkl").write_bytes(pickle.dumps(built.document))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--code", action="append", type=Path,
                        help="a source tree to measure (repeatable; default: this checkout)")
    args = parser.parse_args()
    trees = [path.resolve() for path in args.code or [REPO]]
    with tempfile.TemporaryDirectory(prefix="pdf-memory-") as tmp:
        folder = Path(tmp)
        build(folder)
        print(f"{'round':>5}  {'PDF process MB':>14}  {'RUSAGE_CHILDREN MB':>18}  {'caller MB':>9}  "
              f"{'seconds':>7}  tree")
        for round_no in range(1, args.rounds + 1):
            for tree in trees:
                done = subprocess.run([sys.executable, "-c", WORKER, str(tree), str(folder)],
                                      check=True, capture_output=True, text=True, cwd=tree)
                pdf_peak, rusage_peak, own_peak, seconds = done.stdout.split()
                print(f"{round_no:>5}  {pdf_peak:>14}  {rusage_peak:>18}  {own_peak:>9}  {seconds:>7}  "
                      f"{tree}", flush=True)


if __name__ == "__main__":
    main()
