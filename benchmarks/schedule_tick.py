"""Schedule tick evaluation with many enabled reports (target: 5,000 reports in under 2 s).

Prints the tick time, reports per second, and, as a same-run baseline, the time of the bare
configuration query the tick cannot avoid, so the ratio shows what the tick adds.

    python benchmarks/schedule_tick.py [--reports 5000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

from dagster import Definitions, build_schedule_context, instance_for_test
from sqlalchemy import insert, select

from compliance_reports.config_models import ReportConfig
from compliance_reports.db import migrate
from compliance_reports.db.engine import make_engine
from compliance_reports.db.schema import report_configs

ZONES = ["Europe/Berlin", "America/New_York", "Asia/Kolkata", "Pacific/Kiritimati", "UTC", "Australia/Sydney"]


def seed_reports(engine, count: int) -> None:
    now = datetime.now(timezone.utc)
    rows = []
    for i in range(count):
        report = ReportConfig.model_validate(
            {
                "id": f"bench-{i:05d}",
                "name": f"Benchmark report {i}",
                "organization_id": f"org-{i % 50}",
                "report_type": "general_compliance",
                "schedule": {"frequency": "daily", "time": f"{i % 24:02d}:{(i * 7) % 60:02d}",
                             "timezone": ZONES[i % len(ZONES)], "max_catch_up": 3},
                "formats": ["json"],
            }
        )
        rows.append(
            dict(id=report.id, organization_id=report.organization_id, name=report.name,
                 report_type=report.report_type, frequency="daily", enabled=True,
                 config=report.stored(), version=1, created_by="bench", created_at=now, updated_at=now)
        )
    with engine.begin() as conn:
        conn.execute(insert(report_configs), rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", type=int, default=5000)
    args = parser.parse_args()

    from compliance_reports import definitions as location
    from compliance_reports.orchestration.resources import default_resources

    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        engine = make_engine(url)
        migrate.upgrade_all(engine, engine)
        seed_reports(engine, args.reports)
        defs = Definitions(
            assets=location.defs.assets, schedules=location.defs.schedules,
            resources=default_resources(app_db_url=url),
        )
        schedule = defs.get_schedule_def("daily_reports_schedule")
        when = datetime(2026, 11, 28, 23, 55, tzinfo=timezone.utc)
        with instance_for_test() as instance:
            start = time.perf_counter()
            with engine.connect() as conn:
                conn.execute(select(report_configs).where(report_configs.c.frequency == "daily")).all()
            baseline = time.perf_counter() - start

            timings = []
            for _ in range(3):
                context = build_schedule_context(
                    instance=instance, scheduled_execution_time=when, repository_def=defs.get_repository_def()
                )
                start = time.perf_counter()
                data = schedule.evaluate_tick(context)
                timings.append(time.perf_counter() - start)
        tick = min(timings)
        print(f"reports: {args.reports}")
        print(f"run requests in one tick: {len(data.run_requests or [])}")
        print(f"configuration query (baseline): {baseline:.3f} s")
        print(f"tick evaluation (best of 3): {tick:.3f} s; first tick {timings[0]:.3f} s")
        print(f"reports per second: {args.reports / tick:,.0f}")
        print(f"ratio tick / baseline query: {tick / baseline:.1f}x")
        print(f"target under 2 s: {'MET' if max(timings) < 2.0 else 'NOT MET'}")


if __name__ == "__main__":
    main()
