"""A backfill of one daily report through the real daemon, with publish, against one period run by hand.

    python benchmarks/backfill.py [--days 365] [--per-period]    quick: --days 30 (or BENCH_QUICK=1)

In a fresh data folder (embedded SQLite instance and application database, as `make demo`):

1. seed: `demo seed` traffic of one organization for the days, 300 events a day (demo size);
   one daily general_compliance report (csv, json) delivered to a local storage destination;
2. ours: `compliance-reports backfill REPORT --from FIRST --to LAST` (batched: report_backfill_job
   runs of up to 50 periods that report and publish each period; with --per-period, the Dagster
   job backfill of one report run and one publish run per period), then `dagster-daemon run`
   with the dev workspace until every run finished and every period is delivered; wall time
   from the daemon's start, and the run queue's concurrency from deploy/dagster.local.yaml;
3. the baseline, same run: `compliance-reports run REPORT --period KEY` of one period (one
   in-process Dagster run, no daemon, no publish), per period.

Printed: wall time, seconds per period, the extrapolation to a year (target: 365 periods under
5 minutes), the ratio per period to the baseline. Informational: exit status 0 unless a step fails.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TARGET_YEAR_S = 300.0


def cli(env, *args: str, timeout: float = 1800) -> str:
    done = subprocess.run([str(BIN / "compliance-reports"), *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)
    if done.returncode != 0:
        raise SystemExit(f"compliance-reports {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
    return done.stdout


def config(folder: Path, first: str) -> tuple[Path, Path]:
    destinations = folder / "destinations.yaml"
    destinations.write_text(
        "name: bench-archive\ntype: storage\nprovider: local\nbase_path: delivered\n"
    )
    reports = folder / "reports.yaml"
    reports.write_text(
        "id: bench-daily\nname: Backfill benchmark\norganization_id: org-stmarys\n"
        "report_type: general_compliance\n"
        f"schedule: {{frequency: daily, time: '02:30', timezone: UTC, max_catch_up: 1, start_date: '{first}'}}\n"
        "formats: [csv, json]\ndestinations: [bench-archive]\n"
    )
    return destinations, reports


def settled_batched(instance, backfill_id: str, delivered, periods: int):
    from dagster import DagsterRunStatus, RunsFilter

    runs = instance.get_runs(RunsFilter(tags={"compliance_reports/backfill": backfill_id}))
    done = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
    if runs and all(r.status in done for r in runs) and (
            delivered() >= periods or any(r.status != DagsterRunStatus.SUCCESS for r in runs)):
        return runs, []
    return None


def settled(instance, report_runs_expected: int):
    from dagster import DagsterRunStatus

    runs = [r.dagster_run for r in instance.get_run_records()]
    reports = [r for r in runs if r.job_name == "daily_reports_job"]
    publishes = [r for r in runs if r.job_name == "publish_report_job"]
    done = (DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED)
    finished = [r for r in reports if r.status in done]
    published = [r for r in publishes if r.status in done]
    if len(finished) >= report_runs_expected and len(published) >= len(
            [r for r in finished if r.status == DagsterRunStatus.SUCCESS]):
        return reports, publishes
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30 if os.environ.get("BENCH_QUICK") else 365)
    parser.add_argument("--per-period", action="store_true",
                        help="One report run and one publish run per period (the Dagster job backfill).")
    args = parser.parse_args()
    from dagster import DagsterInstance, DagsterRunStatus

    today = datetime.now(timezone.utc).date()
    last = today - timedelta(days=2)
    first = last - timedelta(days=args.days - 1)
    with tempfile.TemporaryDirectory(prefix="bench-backfill-", ignore_cleanup_errors=True) as tmp:
        data = Path(tmp) / "data"
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPLIANCE_", "DAGSTER_", "AUDIT_DB_URL"))}
        env.update({"COMPLIANCE_DATA_DIR": str(data), "PYTHONUNBUFFERED": "1"})
        cli(env, "db", "upgrade")
        start = time.perf_counter()
        cli(env, "demo", "seed", "--orgs", "1", "--days", str(args.days + 3), "--events-per-day", "300")
        print(f"seeded {args.days + 3} days x 300 events in {time.perf_counter() - start:.1f} s", flush=True)
        destinations, reports = config(Path(tmp), first.isoformat())
        cli(env, "destinations", "apply", "-f", str(destinations))
        cli(env, "reports", "apply", "-f", str(reports))
        for line in cli(env, "env", "--shell").splitlines():
            if line.startswith("export "):
                name, _, value = line[len("export "):].partition("=")
                env[name] = shlex.split(value)[0] if value else ""

        # Baseline: one period by hand (an in-process Dagster run, no daemon, no publish).
        start = time.perf_counter()
        cli(env, "run", "bench-daily", "--period", first.isoformat())
        baseline = time.perf_counter() - start
        # The backfill covers the other periods.
        mode = ["--per-period"] if args.per_period else []
        backfill = json.loads(cli(env, "backfill", "bench-daily", "--from", (first + timedelta(days=1)).isoformat(),
                                  "--to", last.isoformat(), *mode, "--json"))
        periods = args.days - 1
        delivered_dir = data / "delivered"

        def delivered() -> int:
            return sum(1 for _ in delivered_dir.rglob("bench-daily_*.csv"))
        instance = DagsterInstance.from_config(env["DAGSTER_HOME"])
        log = open(Path(tmp) / "daemon.log", "wb")
        daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", str(REPO / "workspace.yaml")],
                                  env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        start = time.perf_counter()
        try:
            while True:
                if args.per_period:
                    result = settled(instance, periods + 1)
                else:
                    result = settled_batched(instance, backfill["backfill_id"], delivered, periods + 1)
                if result:
                    break
                if daemon.poll() is not None:
                    raise SystemExit(f"the daemon exited {daemon.returncode}; see {log.name}")
                time.sleep(2)
        finally:
            wall = time.perf_counter() - start
            os.killpg(daemon.pid, 15)
            daemon.wait(30)
            instance.dispose()
        reports_runs, publishes = result
        failed = [r.run_id for r in reports_runs + publishes if r.status != DagsterRunStatus.SUCCESS]
        per_period = wall / periods
        year = per_period * 365
        how = ("one report and one publish run per period" if args.per_period
               else f"{len(reports_runs)} batched runs of up to {backfill['batch_size']} periods")
        print(f"backfill {backfill.get('backfill_id', '?')}: {periods} daily periods, {how}, reported and published "
              f"through the daemon in {wall:.1f} s ({per_period:.2f} s per period; {len(failed)} failed run(s); "
              f"{delivered()} periods delivered, {periods + 1} expected with the baseline's)")
        print(f"baseline, one period by hand (`compliance-reports run`): {baseline:.2f} s; "
              f"ratio per period {per_period / baseline:.2f}x")
        print(f"a year of daily periods at this pace: {year / 60:.1f} min; target under {TARGET_YEAR_S / 60:.0f} min: "
              f"{'MET' if year <= TARGET_YEAR_S else 'NOT MET'}")
        if failed or delivered() < periods + 1:
            raise SystemExit(1)


if __name__ == "__main__":
    main()
