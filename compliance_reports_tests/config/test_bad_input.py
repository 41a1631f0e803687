"""Every bad input of cases.py, through the real CLI, on SQLite and on PostgreSQL.

For each case: the exit status (2 for bad input), one line of the output naming the field, no
traceback, and nothing written (report_configs, destinations, report_templates,
schedule_requests and audit_log exactly as before). PostgreSQL is where NUL bytes and
over-long values would otherwise surface as driver errors.
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import func, insert, select

from compliance_reports.cli.main import main
from compliance_reports.config import store as config_store
from compliance_reports.db.engine import make_engine
from compliance_reports.db.schema import (
    audit_log,
    destinations,
    report_configs,
    report_templates,
    schedule_requests,
)
from compliance_reports_tests.config.cases import (
    ALL_CASES,
    BASE_DESTINATIONS,
    BASE_REPORT,
    BASE_TEMPLATES,
    REQUEST_CASES,
    SENSOR_ROWS,
    Case,
    dump_yaml,
)
from compliance_reports_tests.conftest import PG_URL_BASE, _pg_admin, require_postgres

CHECKPOINT_KEY = "bad-input-suite-checkpoint-key"
WRITTEN = (report_configs, destinations, report_templates, schedule_requests)


def _environment(mp: pytest.MonkeyPatch, url: str, data_dir: Path) -> None:
    mp.setenv("COMPLIANCE_DATA_DIR", str(data_dir))
    mp.setenv("COMPLIANCE_DB_URL", url)
    mp.setenv("AUDIT_DB_URL", url)
    mp.setenv("COMPLIANCE_CHECKPOINT_KEY", CHECKPOINT_KEY)


def _create_pg_database() -> str:
    require_postgres()
    name = f"cr_test_{uuid.uuid4().hex[:16]}"
    conn = _pg_admin()
    try:
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()
    return name


def _drop_pg_database(name: str) -> None:
    conn = _pg_admin()
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        conn.close()


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def database(request, tmp_path_factory):
    """One database per backend holding the base state (two destinations, a template, a report)."""
    folder = tmp_path_factory.mktemp(f"bad-input-{request.param}")
    pg_name = None
    if request.param == "postgres":
        pg_name = _create_pg_database()
        url = f"{PG_URL_BASE}/{pg_name}"
    else:
        url = f"sqlite:///{folder / 'compliance.db'}"
    try:
        with pytest.MonkeyPatch.context() as mp:
            _environment(mp, url, folder / "data")
            runner = CliRunner()
            for argv, text in (
                (["db", "upgrade"], None),
                (["destinations", "apply", "-f"], BASE_DESTINATIONS),
                (["templates", "apply", "-f"], BASE_TEMPLATES),
                (["reports", "apply", "-f"], dump_yaml(BASE_REPORT)),
            ):
                if text is not None:
                    path = folder / f"base-{argv[0]}.yaml"
                    path.write_text(text)
                    argv = [*argv, str(path)]
                result = runner.invoke(main, argv, catch_exceptions=False)
                assert result.exit_code == 0, result.output
        engine = make_engine(url)
        yield url, engine
        engine.dispose()
    finally:
        if pg_name:
            _drop_pg_database(pg_name)


def snapshot(engine) -> dict:
    """Everything a case could have written: every row of the configuration tables."""
    with engine.connect() as conn:
        state = {
            table.name: sorted(json.dumps(dict(row), sort_keys=True, default=str)
                               for row in conn.execute(select(table)).mappings())
            for table in WRITTEN
        }
        state["audit_log"] = conn.execute(select(func.count()).select_from(audit_log)).scalar_one()
    return state


def _prepare(case: Case, tmp_path: Path) -> list[str]:
    file = tmp_path / "case.yaml"
    if isinstance(case.content, bytes):
        file.write_bytes(case.content)
    elif case.content is not None:
        file.write_text(case.content, encoding="utf-8", errors="surrogatepass")
    (tmp_path / "f.enc").write_bytes(b"CRENC1" + b"\0" * 40)
    return [a.replace("{file}", str(file)).replace("{tmp}", str(tmp_path)) for a in case.argv]


@pytest.mark.parametrize("case", ALL_CASES, ids=[c.id for c in ALL_CASES])
def test_bad_input_is_refused_naming_the_field_and_nothing_is_written(database, case, tmp_path, monkeypatch):
    url, engine = database
    _environment(monkeypatch, url, tmp_path / "data")
    for name, value in case.env.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    argv = _prepare(case, tmp_path)
    before = snapshot(engine)

    result = CliRunner().invoke(main, argv, catch_exceptions=False)

    output = result.output
    assert result.exit_code == case.status, output
    assert "Traceback" not in output
    (line,) = result.stderr.strip().splitlines()  # one readable line
    assert all(needle in line for needle in case.needles), (case.needles, output)
    if "{file}" in case.argv:
        assert str(tmp_path / "case.yaml") in output
    assert snapshot(engine) == before


def test_the_table_is_large_and_its_ids_unique():
    ids = [c.id for c in ALL_CASES]
    assert len(ids) == len(set(ids))
    assert len(ids) + len(REQUEST_CASES) + len(SENSOR_ROWS) >= 150


@pytest.mark.parametrize("case", sorted(REQUEST_CASES))
def test_schedule_request_is_refused_by_the_model_before_any_query(database, case):
    url, engine = database
    kwargs, field = REQUEST_CASES[case]
    before = snapshot(engine)
    with pytest.raises(ValueError, match=f"field '{field}'"):
        config_store.request(engine, **kwargs)
    assert snapshot(engine) == before


def test_sensor_fails_each_bad_request_row_naming_the_field(database):
    from dagster import build_sensor_context

    from compliance_reports_tests.orchestration.helpers import location_for_tests, queued_instance

    url, engine = database
    now = datetime.now(timezone.utc)
    ids = {}
    with engine.begin() as conn:
        for name, (row, _field) in SENSOR_ROWS.items():
            values = {"requested_by": "other-system", **row, "requested_at": now, "status": "pending"}
            ids[name] = conn.execute(insert(schedule_requests).values(**values)).inserted_primary_key[0]
    configs_before = {k: v for k, v in snapshot(engine).items() if k != "schedule_requests"}

    defs = location_for_tests(url)
    sensor = defs.get_repository_def().get_sensor_def("schedule_requests_sensor")
    with queued_instance() as instance, build_sensor_context(
        instance=instance, instance_ref=instance.get_ref(), definitions=defs, resources=defs.resources,
    ) as context:
        result = sensor.evaluate_tick(context)

    assert result.run_requests == []
    with engine.connect() as conn:
        rows = {r["id"]: r for r in conn.execute(select(schedule_requests)).mappings()}
    for name, (_row, field) in SENSOR_ROWS.items():
        row = rows[ids[name]]
        assert row["status"] == "failed", (name, row)
        assert field in json.loads(row["result"])["error"], (name, row["result"])
    assert {k: v for k, v in snapshot(engine).items() if k != "schedule_requests"} == configs_before
    assert config_store.get_report(engine, "r-good").enabled is True
