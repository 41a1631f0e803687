"""One classifier decides what a step retries: outages of the database or the artifact store."""

from __future__ import annotations

import errno
import sqlite3

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from pydantic import ValidationError
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError, OperationalError

from compliance_reports.config import store as config_store
from compliance_reports.config.models import ReportConfig
from compliance_reports.operations.transient_errors import (
    ARTIFACT_STORE,
    DATABASE,
    PERMANENT,
    StepRetry,
    classify,
    is_transient,
)
from compliance_reports_tests.peers import free_port


def _raised(fn):
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - the test inspects whatever was raised
        return exc
    raise AssertionError("nothing was raised")


def test_postgres_that_refuses_connections_is_a_database_outage():
    engine = create_engine(f"postgresql+psycopg2://postgres@127.0.0.1:{free_port()}/x",
                           connect_args={"connect_timeout": 2})
    exc = _raised(lambda: engine.connect())
    assert isinstance(exc, OperationalError)
    verdict = classify(exc)
    assert verdict.transient and verdict.kind == DATABASE
    assert verdict.reason.startswith("database unavailable: OperationalError")


def test_sqlite_locked_is_transient_but_a_missing_table_is_not(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with engine.connect() as conn:
        missing = _raised(lambda: conn.execute(text("SELECT * FROM report_configs")))
    assert isinstance(missing, OperationalError)
    assert classify(missing).kind == PERMANENT
    assert is_transient(sqlite3.OperationalError("database is locked"))


def test_constraint_violations_and_bad_input_are_permanent(engine):
    insert = text("INSERT INTO schedule_requests (id, report_id, action, requested_at, status) "
                  "VALUES (1, 'r', 'run_now', '2026-01-01', 'pending')")
    with engine.begin() as conn:
        conn.execute(insert)
    with engine.connect() as conn:
        dup = _raised(lambda: conn.execute(insert))
    assert isinstance(dup, IntegrityError) and not is_transient(dup)
    missing = _raised(lambda: config_store.get_report(engine, "nope"))
    assert isinstance(missing, config_store.NotFoundError) and not is_transient(missing)
    invalid = _raised(lambda: ReportConfig.model_validate({"id": "Bad Id"}))
    assert isinstance(invalid, ValidationError) and classify(invalid).kind == PERMANENT
    assert not is_transient(ValueError("period '2026-13-01' is not a date"))


@pytest.mark.parametrize(
    "exc, transient",
    [
        (PermissionError(errno.EACCES, "Permission denied", "/data/artifacts/x"), True),
        (OSError(errno.ENOSPC, "No space left on device"), True),
        (OSError(errno.ESTALE, "Stale file handle"), True),
        (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), True),
        (TimeoutError("timed out"), True),
        (FileNotFoundError(errno.ENOENT, "No such file", "report.json"), False),
        (FileExistsError(errno.EEXIST, "exists", "report.pdf"), False),
        (NotADirectoryError(errno.ENOTDIR, "Not a directory"), False),
    ],
)
def test_store_os_errors(exc, transient):
    verdict = classify(exc)
    assert verdict.transient is transient
    assert verdict.kind == (ARTIFACT_STORE if transient else PERMANENT)


def test_s3_endpoint_down_is_an_artifact_store_outage():
    client = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{free_port()}", region_name="us-east-1",
                          aws_access_key_id="k", aws_secret_access_key="s",
                          config=Config(retries={"max_attempts": 1}, connect_timeout=2))
    exc = _raised(lambda: client.head_bucket(Bucket="artifacts"))
    verdict = classify(exc)
    assert verdict.transient and verdict.kind == ARTIFACT_STORE, verdict


@pytest.mark.parametrize(
    "code, status, transient",
    [("SlowDown", 503, True), ("InternalError", 500, True), ("ServiceUnavailable", 503, True),
     ("NoSuchKey", 404, False), ("AccessDenied", 403, False), ("NoSuchBucket", 404, False)],
)
def test_s3_replies(code, status, transient):
    exc = ClientError({"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                      "PutObject")
    assert is_transient(exc) is transient


def test_an_outage_wrapped_in_a_domain_error_stays_transient():
    class ReportBuildError(Exception):
        pass

    try:
        try:
            raise sqlite3.OperationalError("database is locked")
        except sqlite3.OperationalError as inner:
            raise ReportBuildError("could not count events") from inner
    except ReportBuildError as outer:
        verdict = classify(outer)
    assert verdict.transient and "database is locked" in verdict.reason


def test_step_retry_backs_off_exponentially_with_jitter_and_a_cap():
    policy = StepRetry(max_retries=6, initial_s=10, multiplier=2, max_delay_s=120)
    upper = [policy.delay(n, rand=lambda: 0.999999) for n in range(6)]
    lower = [policy.delay(n, rand=lambda: 0.0) for n in range(6)]
    assert [round(d) for d in upper] == [10, 20, 40, 80, 120, 120]
    assert [round(d) for d in lower] == [5, 10, 20, 40, 60, 60]  # never sooner than half
    assert sum(lower) > 180  # a three-minute outage is outlasted inside the run
