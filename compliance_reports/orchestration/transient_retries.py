"""Dagster steps retry outages of the database or the artifact store, and nothing else.

`retry_transient(context)` wraps a step body: an exception that `operations.transient_errors`
classifies as transient becomes `RetryRequested` with capped exponential backoff and jitter
(`STEP_RETRY`); anything else (bad input, a missing report, a bug) fails the step at once.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

from dagster import Failure, RetryRequested

from compliance_reports.operations import transient_errors


@contextmanager
def retry_transient(context) -> Iterator[None]:
    try:
        yield
    except (Failure, RetryRequested):
        raise
    except Exception as exc:
        verdict = transient_errors.classify(exc)
        if not verdict.transient:
            raise
        policy = transient_errors.STEP_RETRY
        attempt = context.retry_number
        if attempt >= policy.max_retries:
            context.log.error(f"{verdict.reason}; giving up after {attempt} retries")
            raise
        delay = policy.delay(attempt)
        context.log.warning(
            f"{verdict.reason}; retry {attempt + 1} of {policy.max_retries} in {delay:.1f} s"
        )
        raise RetryRequested(max_retries=policy.max_retries, seconds_to_wait=delay) from exc
