"""Partitions of the report assets: {period: time windows, report: dynamic report ids}.

Defined once here and imported everywhere. A period key is the period's local start date in
the report's own timezone; Dagster's UTC window of the key is never used for queries
(periods.period_window computes the real one). end_offset=1 exposes the period that is still
open in UTC, because in timezones ahead of UTC it may already have ended locally. The first
period of each asset is settings.first_periods (COMPLIANCE_FIRST_PERIOD_<FREQUENCY>), read when
the code location loads and shared with the request checks.
"""

from __future__ import annotations

from dagster import (
    DailyPartitionsDefinition,
    DynamicPartitionsDefinition,
    MonthlyPartitionsDefinition,
    MultiPartitionKey,
    MultiPartitionsDefinition,
    TimeWindowPartitionsDefinition,
    WeeklyPartitionsDefinition,
)

from compliance_reports.settings import first_periods

FREQUENCIES = ("daily", "weekly", "monthly", "quarterly")
FIRST_PERIODS = first_periods()

period_partitions = {
    "daily": DailyPartitionsDefinition(start_date=FIRST_PERIODS["daily"], end_offset=1),
    "weekly": WeeklyPartitionsDefinition(
        start_date=FIRST_PERIODS["weekly"], day_offset=1, end_offset=1
    ),
    "monthly": MonthlyPartitionsDefinition(start_date=FIRST_PERIODS["monthly"], end_offset=1),
    "quarterly": TimeWindowPartitionsDefinition(
        cron_schedule="0 0 1 */3 *", start=FIRST_PERIODS["quarterly"], fmt="%Y-%m-%d", end_offset=1
    ),
}

report_id_partitions = {
    frequency: DynamicPartitionsDefinition(name=f"{frequency}_reports") for frequency in FREQUENCIES
}

report_partitions = {
    frequency: MultiPartitionsDefinition(
        {"period": period_partitions[frequency], "report": report_id_partitions[frequency]}
    )
    for frequency in FREQUENCIES
}


def partition_key(period: str, report_id: str) -> MultiPartitionKey:
    return MultiPartitionKey({"period": period, "report": report_id})


def partition_key_string(period: str, report_id: str) -> str:
    """The stored form: dimension values in dimension-name order joined by '|'."""
    return f"{period}|{report_id}"
