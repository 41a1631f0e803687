"""Shared fixtures: SQLite databases per test, PostgreSQL databases created and dropped per use."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest
from hypothesis import settings
from sqlalchemy import Engine

from compliance_reports.db import migrate
from compliance_reports.db.engine import make_engine
from compliance_reports_tests.peers import http_factory, smtp_factory, smtp_server  # noqa: F401 - fixtures

# CI runs the property tests on a fixed example sequence, so a green run is reproducible;
# locally they explore new examples each run.
settings.register_profile("ci", derandomize=True, print_blob=True)
if os.environ.get("CI") == "true":
    settings.load_profile("ci")

# Tests never read the checkout's own environment file (data/compliance.env after `make demo`):
# the demo's signing keys or mail port would change what they observe.
os.environ["COMPLIANCE_ENV_FILE"] = os.devnull

PG_ADMIN_DSN = os.environ.get("COMPLIANCE_TEST_PG_DSN", "host=127.0.0.1 port=5432 user=postgres dbname=postgres")
PG_URL_BASE = os.environ.get(
    "COMPLIANCE_TEST_PG_URL_BASE", "postgresql+psycopg2://postgres@127.0.0.1:5432"
)


def _pg_admin():
    import psycopg2

    conn = psycopg2.connect(PG_ADMIN_DSN, connect_timeout=5)
    conn.autocommit = True
    return conn


def require_postgres() -> None:
    """Skip when PostgreSQL is absent, except under CI where its absence is a failure."""
    try:
        _pg_admin().close()
    except Exception as exc:  # noqa: BLE001 - any connection problem means "absent"
        message = f"PostgreSQL not reachable at 127.0.0.1:5432: {exc}".strip()
        if os.environ.get("CI") == "true":
            pytest.fail(message + " (CI must have PostgreSQL)")
        pytest.skip(message)


@pytest.fixture(autouse=True)
def own_data_folder(tmp_path_factory, monkeypatch) -> None:
    """Each test's own data folder (a test may set another): nothing a test writes, such as the
    alert fallback file, lands in the checkout's data/ or the one `make` exports."""
    monkeypatch.setenv("COMPLIANCE_DATA_DIR", str(tmp_path_factory.mktemp("data")))


@pytest.fixture
def pg_database() -> Iterator[Callable[[], str]]:
    """A factory of fresh, uniquely named PostgreSQL databases, all dropped afterwards."""
    require_postgres()
    created: list[str] = []

    def create() -> str:
        name = f"cr_test_{uuid.uuid4().hex[:16]}"
        conn = _pg_admin()
        try:
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        created.append(name)
        return f"{PG_URL_BASE}/{name}"

    yield create
    conn = _pg_admin()
    try:
        with conn.cursor() as cur:
            for name in created:
                cur.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = %s AND pid <> pg_backend_pid()",
                    (name,),
                )
                cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        conn.close()


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'compliance.db'}"


@pytest.fixture
def engine(sqlite_url) -> Iterator[Engine]:
    """A migrated SQLite database holding both the application and the audit tables."""
    eng = make_engine(sqlite_url)
    migrate.upgrade_all(eng, eng)
    yield eng
    eng.dispose()


@pytest.fixture
def pg_engine(pg_database) -> Iterator[Engine]:
    eng = make_engine(pg_database())
    migrate.upgrade_all(eng, eng)
    yield eng
    eng.dispose()


@pytest.fixture(scope="session")
def moto_s3_endpoint() -> Iterator[str]:
    """A real S3-compatible HTTP endpoint (moto in server mode) on a free local port."""
    from moto.server import ThreadedMotoServer

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()
