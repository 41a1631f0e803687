"""The asset partitions and the request check agree on which periods exist."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from compliance_reports.orchestration.report_partitions import FIRST_PERIODS, FREQUENCIES, period_partitions
from compliance_reports.periods import latest_ended_period, previous_period_key


@pytest.mark.parametrize("frequency", FREQUENCIES)
def test_first_partition_is_the_first_requestable_period(frequency):
    partitions = period_partitions[frequency]
    assert partitions.get_first_partition_key() == FIRST_PERIODS[frequency]
    assert not partitions.has_partition_key(previous_period_key(FIRST_PERIODS[frequency], frequency))


@pytest.mark.parametrize("frequency", FREQUENCIES)
@pytest.mark.parametrize("zone", ["Pacific/Kiritimati", "Pacific/Auckland", "UTC", "America/New_York", "Etc/GMT+12"])
def test_every_ended_period_is_a_partition(frequency, zone):
    # Ended in UTC+14 means the still-open UTC window: end_offset=1 must expose it.
    latest = latest_ended_period(datetime.now(timezone.utc), frequency, zone)
    assert period_partitions[frequency].has_partition_key(latest)
