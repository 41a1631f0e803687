from __future__ import annotations

from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest

from compliance_reports.config.models import RetryPolicy
from compliance_reports.delivery.backoff import backoff_delay, nominal_delay, parse_retry_after, policy_delay


def test_nominal_delay_grows_and_caps():
    assert [nominal_delay(n, 2, 2, 30) for n in range(6)] == [2, 4, 8, 16, 30, 30]
    assert nominal_delay(10_000, 1, 1e10, 300) == 300  # no overflow


@pytest.mark.parametrize("r", [0.0, 0.5, 0.999])
def test_jitter_bounds(r):
    assert backoff_delay(2, initial=1, multiplier=2, max_delay=100, jitter="equal", rand=lambda: r) == pytest.approx(2 + 2 * r)
    assert backoff_delay(2, initial=1, multiplier=2, max_delay=100, jitter="full", rand=lambda: r) == pytest.approx(4 * r)
    assert backoff_delay(2, initial=1, multiplier=2, max_delay=100, jitter="none") == 4


def test_policy_delay_default_random_stays_in_range():
    policy = RetryPolicy(initial_delay_s=2, multiplier=3, max_delay_s=50)
    for n in range(6):
        cap = min(50, 2 * 3**n)
        assert cap / 2 <= policy_delay(policy, n) <= cap


def test_parse_retry_after():
    now = datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc)
    assert parse_retry_after("1", now) == 1.0
    assert parse_retry_after(" 120 ", now) == 120.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None and parse_retry_after("", now) is None
