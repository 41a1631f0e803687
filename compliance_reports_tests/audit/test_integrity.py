"""Integrity verification: each kind of tampering gives the right verdict and first break."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from click.testing import CliRunner
from sqlalchemy import delete, insert, select, update

from compliance_reports.audit.hashing import row_hash
from compliance_reports.audit.integrity import (
    BROKEN,
    INCOMPLETE,
    NO_DATA,
    VERIFIED,
    Checkpoint,
    key_id,
    verify_window,
)
from compliance_reports.cli.integrity import integrity as integrity_cli
from compliance_reports.db.schema import audit_log, integrity_checkpoints
from compliance_reports_tests.reports.dataset import load, ts

KEY = b"test-checkpoint-key"
START, END = ts("2026-04-01T00:00:00Z"), ts("2026-04-02T00:00:00Z")
NOW = ts("2026-04-03T00:00:00Z")


def _row(i, when, org="org-a", status="success"):
    return (i, org, when, f"usr-{i}", "fhir.patient.read", "Patient", f"Patient/p{i}", status, "PHI",
            {"patient_id": f"p{i}"})


ROWS = [
    _row(1, "2026-03-31T23:00:00Z"),          # before the window: seeds the chain
    _row(2, "2026-04-01T01:00:00Z"),
    _row(3, "2026-04-01T02:00:00Z"),
    _row(4, "2026-04-01T03:00:00Z"),
    _row(5, "2026-04-01T04:00:00Z"),
    _row(6, "2026-04-01T05:00:00Z"),
    _row(7, "2026-04-01T06:00:00Z"),          # last row of the window
    _row(50, "2026-04-01T03:30:00Z", org="org-b"),
    _row(51, "2026-04-01T07:00:00Z", org="org-b"),
]


@pytest.fixture
def db(engine):
    load(engine, ROWS)
    return engine


def verify(engine, key=KEY, write=False, start=START, end=END, now=NOW):
    return verify_window(engine, engine, "org-a", start, end, key=key, write_checkpoint=write, now=now)


def set_row(engine, event_id, **values):
    with engine.begin() as conn:
        conn.execute(update(audit_log).where(audit_log.c.id == event_id).values(**values))


def delete_row(engine, event_id):
    with engine.begin() as conn:
        conn.execute(delete(audit_log).where(audit_log.c.id == event_id))


def first_break(result):
    return (result.first_break.event_id, result.first_break.kind) if result.first_break else None


def test_intact_window_verifies(db):
    result = verify(db)
    assert result.verdict == VERIFIED
    assert (result.rows, result.verified, result.mismatched, result.unhashed, result.chain_breaks) == (6, 6, 0, 0, 0)
    assert result.first_break is None
    assert result.reason == "all 6 row(s) in the window verified and the chain is intact"


def test_altered_field_is_content_changed(db):
    set_row(db, 4, outcome_description="nothing to see")
    result = verify(db)
    assert result.verdict == BROKEN
    assert result.mismatched == 1 and result.chain_breaks == 0
    assert first_break(result) == (4, "content_changed")
    assert "content changed" in result.reason


def test_deleted_middle_row_breaks_the_chain_after_it(db):
    delete_row(db, 4)
    result = verify(db)
    assert result.verdict == BROKEN
    assert result.mismatched == 0 and result.chain_breaks == 1
    assert first_break(result) == (5, "chain_broken")
    assert "rows missing or reordered" in result.reason


def test_swapped_order_with_rehashed_rows_breaks_the_chain(db):
    # An attacker who knows the (unkeyed) row hash swaps two timestamps and re-hashes both
    # rows: each row verifies on its own, but the links no longer fit.
    with db.begin() as conn:
        rows = {r.id: dict(r._mapping) for r in conn.execute(select(audit_log).where(audit_log.c.id.in_([3, 4])))}
    rows[3]["timestamp"], rows[4]["timestamp"] = rows[4]["timestamp"], rows[3]["timestamp"]
    for i in (3, 4):
        set_row(db, i, timestamp=rows[i]["timestamp"], hash=row_hash(rows[i]))
    result = verify(db)
    assert result.verdict == BROKEN
    assert result.mismatched == 0
    assert first_break(result) == (4, "chain_broken")  # 4 now comes first and links to 2's successor
    assert result.chain_breaks == 3


def test_unhashed_row_is_incomplete(db):
    set_row(db, 5, hash=None)
    result = verify(db)
    assert result.verdict == INCOMPLETE
    assert result.unhashed == 1 and result.mismatched == 0
    assert first_break(result) == (5, "unhashed")
    assert result.reason == "1 row(s) have no hash"


def test_deleted_first_rows_of_the_log_are_detected(db):
    delete_row(db, 1)
    result = verify(db)
    assert result.verdict == BROKEN
    assert first_break(result) == (2, "head_missing")


def test_deleted_tail_is_caught_by_the_checkpoint_of_a_previous_run(db):
    first = verify(db, write=True)
    assert first.verdict == VERIFIED
    written = first.checkpoint_written
    assert (written["last_event_id"], written["row_count"], written["key_id"]) == ("7", 7, key_id(KEY))
    delete_row(db, 7)
    again = verify(db, write=True)
    # the chain that is left is intact: only the checkpoint knows row 7 existed
    assert again.chain_breaks == 0 and again.mismatched == 0
    assert again.verdict == BROKEN
    assert again.reason.startswith("tail rows deleted or altered since checkpoint 1")
    assert first_break(again) == (7, "tail_deleted")
    assert again.checkpoint_written is None
    with db.connect() as conn:
        assert conn.execute(select(integrity_checkpoints.c.id)).scalars().all() == [1]


def test_rehashed_tail_row_is_caught_by_the_checkpoint(db):
    verify(db, write=True)
    with db.begin() as conn:
        row = dict(conn.execute(select(audit_log).where(audit_log.c.id == 7)).one()._mapping)
    row["status"] = "failure"
    set_row(db, 7, status="failure", hash=row_hash(row))
    result = verify(db)
    assert result.chain_breaks == 0 and result.mismatched == 0
    assert result.verdict == BROKEN
    assert "its last event 7 has changed" in result.reason


def test_forged_checkpoint_is_not_trusted(db):
    verify(db, write=True)
    # delete the tail and "fix" the checkpoint to match: the signature no longer fits
    delete_row(db, 7)
    with db.begin() as conn:
        row6 = conn.execute(select(audit_log.c.hash).where(audit_log.c.id == 6)).scalar_one()
        conn.execute(update(integrity_checkpoints).values(
            last_event_id="6", last_hash=row6, last_event_timestamp=ts("2026-04-01T05:00:00Z"), row_count=6))
    result = verify(db)
    assert result.verdict == BROKEN
    assert "invalid signature (forged or altered): it is not trusted" in result.reason
    assert result.previous_checkpoint["status"] == "forged"
    assert result.first_break.kind == "checkpoint_forged"


def test_checkpoint_signed_with_another_key_claiming_ours_is_forged(db):
    forged = Checkpoint("org-a", START, END, 7, "7", ts("2026-04-01T06:00:00Z"), "0" * 64,
                        key_id(KEY), created_at=NOW)
    forged.signature = forged.sign(b"attacker-key")
    with db.begin() as conn:
        conn.execute(insert(integrity_checkpoints).values(
            organization_id="org-a", window_start=START, window_end=END, row_count=7,
            last_event_id="7", last_event_timestamp=forged.last_event_timestamp,
            last_hash=forged.last_hash, key_id=forged.key_id, signature=forged.signature,
            created_at=NOW))
    result = verify(db)
    assert result.verdict == BROKEN
    assert result.previous_checkpoint["status"] == "forged"


def test_checkpoint_needs_the_key(db):
    result = verify(db, key=None, write=True)
    assert result.verdict == INCOMPLETE
    assert "no signing key (COMPLIANCE_CHECKPOINT_KEY is not set), so no checkpoint was written" in result.reason
    verify(db, write=True)
    # a checkpoint exists now; without the key (or with another key) it cannot be checked
    assert verify(db, key=None).verdict == INCOMPLETE
    other = verify(db, key=b"rotated")
    assert other.verdict == INCOMPLETE and "signed with key id" in other.reason


def test_window_not_over_is_incomplete_and_writes_no_checkpoint(db):
    result = verify(db, write=True, now=ts("2026-04-01T12:00:00Z"))
    assert result.verdict == INCOMPLETE
    assert "has not ended yet" in result.reason
    assert result.checkpoint_written is None


def test_consistent_checkpoint_verifies_and_is_not_duplicated(db):
    verify(db, write=True)
    result = verify(db, write=True)
    assert result.verdict == VERIFIED
    assert result.previous_checkpoint["status"] == "consistent"
    assert result.checkpoint_written is None
    # the next day has no rows: the checkpoint of the first day is still consistent, but an
    # empty window is NO_DATA and signs no checkpoint (it would vouch for nothing)
    nxt = verify(db, write=True, start=END, end=END + timedelta(days=1))
    assert nxt.verdict == NO_DATA and nxt.rows == 0
    assert nxt.previous_checkpoint["status"] == "consistent"
    assert nxt.checkpoint_written is None
    with db.connect() as conn:
        assert conn.execute(select(integrity_checkpoints.c.id)).scalars().all() == [1]


def test_postgresql_detects_alteration_and_tail_deletion(pg_engine):
    load(pg_engine, ROWS)
    assert verify(pg_engine, write=True).verdict == VERIFIED
    set_row(pg_engine, 3, action="fhir.patient.delete")
    delete_row(pg_engine, 7)
    result = verify(pg_engine)
    assert result.verdict == BROKEN
    assert first_break(result) == (3, "content_changed")
    assert any(b.kind == "tail_deleted" for b in result.breaks)


# ------------------------------------------------------------------ CLI


@pytest.fixture
def cli_env(db, sqlite_url, monkeypatch, tmp_path):
    monkeypatch.setenv("COMPLIANCE_DB_URL", sqlite_url)
    monkeypatch.delenv("AUDIT_DB_URL", raising=False)
    monkeypatch.setenv("COMPLIANCE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("COMPLIANCE_CHECKPOINT_KEY", KEY.decode())
    return db


def test_cli_verify_exit_codes(cli_env):
    runner = CliRunner()
    ok = runner.invoke(integrity_cli, ["verify", "--org", "org-a", "--from", "2026-04-01",
                                       "--to", "2026-04-02", "--json"])
    assert ok.exit_code == 0, ok.output
    data = json.loads(ok.output)
    assert data["verdict"] == "VERIFIED" and data["rows"] == 6
    assert data["checkpoint_written"]["last_event_id"] == "7"

    set_row(cli_env, 6, status="failure")
    broken = runner.invoke(integrity_cli, ["verify", "--org", "org-a", "--from", "2026-04-01T00:00",
                                           "--to", "2026-04-02T00:00", "--no-checkpoint"])
    assert broken.exit_code == 1
    assert broken.output.startswith("BROKEN:")
    assert "first break: event 6 (content changed)" in broken.output

    for args in (["--from", "2026-04-02", "--to", "2026-04-01"],
                 ["--from", "yesterday", "--to", "2026-04-01"],
                 ["--from", "2026-04-01", "--to", "2026-04-02", "--timezone", "Mars/Base"]):
        bad = runner.invoke(integrity_cli, ["verify", "--org", "org-a", *args])
        assert bad.exit_code == 2, (args, bad.output)
    bad_org = runner.invoke(integrity_cli, ["verify", "--org", "org a", "--from", "2026-04-01",
                                            "--to", "2026-04-02"])
    assert bad_org.exit_code == 2


def test_cli_reads_times_in_the_given_timezone(cli_env):
    runner = CliRunner()
    # 2026-04-01 in New York is 04:00Z..04:00Z next day: rows 5, 6, 7 (04:00, 05:00, 06:00)
    result = runner.invoke(integrity_cli, ["verify", "--org", "org-a", "--from", "2026-04-01",
                                           "--to", "2026-04-02", "--timezone", "America/New_York",
                                           "--json", "--no-checkpoint"])
    data = json.loads(result.output)
    assert data["window_start_utc"] == "2026-04-01T04:00:00.000000Z"
    assert data["rows"] == 3
    # the window ends 2026-04-02T04:00Z, which is after "now" only if the test runs before it
    assert result.exit_code == (0 if datetime.now(timezone.utc) >= ts("2026-04-02T04:00:00Z") else 1)


def test_key_rotation_starts_a_new_checkpoint_chain(db):
    verify(db, write=True)  # checkpoint under the old key
    rotated = verify(db, key=b"rotated-key-0123456789abcdef", write=True)
    assert rotated.verdict == INCOMPLETE and "signed with key id" in rotated.reason
    assert rotated.checkpoint_written is not None  # a checkpoint under the new key
    after = verify(db, key=b"rotated-key-0123456789abcdef", write=True)
    assert after.verdict == VERIFIED
    assert after.previous_checkpoint["status"] == "consistent"


def _checkpoints(engine) -> list:
    with engine.connect() as conn:
        return conn.execute(select(integrity_checkpoints.c.id)).scalars().all()


def test_cli_unknown_organization_exits_2(cli_env):
    result = CliRunner().invoke(integrity_cli, ["verify", "--org", "org-nobody", "--from",
                                                "2026-04-01", "--to", "2026-04-02"])
    assert result.exit_code == 2, result.output
    assert "--org 'org-nobody': the audit log has no rows of this organization at all" in result.output
    assert _checkpoints(cli_env) == []


def test_cli_window_without_rows_is_no_data_exit_3(cli_env):
    runner = CliRunner()
    result = runner.invoke(integrity_cli, ["verify", "--org", "org-a", "--from", "2026-05-01",
                                           "--to", "2026-05-02"])
    assert result.exit_code == 3, result.output
    assert result.output.startswith("NO_DATA: the organization has no audit rows in the window")
    assert "coverage: no events in the window" in result.output
    assert _checkpoints(cli_env) == []
    data = json.loads(runner.invoke(integrity_cli, [
        "verify", "--org", "org-a", "--from", "2026-05-01", "--to", "2026-05-02", "--json"]).output)
    assert data["verdict"] == "NO_DATA" and data["checkpoint_written"] is None
    assert data["coverage"]["status"] == "no_data"
    assert data["coverage"]["units_without_events"] == 24


def test_cli_coverage_uses_max_silence_hours(cli_env):
    # org-a's rows in the window are 01:00Z..06:00Z and it has none later: 18 silent hours to
    # the end of the window, within 24 but longer than 12 (the log ends inside the window).
    runner = CliRunner()
    args = ["verify", "--org", "org-a", "--from", "2026-04-01", "--to", "2026-04-02", "--json",
            "--no-checkpoint"]
    default = json.loads(runner.invoke(integrity_cli, args).output)
    assert default["coverage"]["status"] == "complete"
    assert default["coverage"]["longest_silence"]["hours"] == 18
    strict = runner.invoke(integrity_cli, [*args[:-2], "--no-checkpoint", "--max-silence-hours", "12"])
    assert strict.exit_code == 0, strict.output  # coverage findings do not change the verdict
    assert strict.output.startswith("VERIFIED:")
    assert ("coverage: partial: covered from 2026-04-01T00:00:00+00:00 to "
            "2026-04-01T06:00:00+00:00") in strict.output
    assert "coverage finding: Audit log ends inside the window" in strict.output
    bad = runner.invoke(integrity_cli, [*args, "--max-silence-hours", "0"])
    assert bad.exit_code == 2


def test_postgresql_empty_window_is_no_data_without_checkpoint(pg_engine):
    load(pg_engine, ROWS)
    result = verify(pg_engine, write=True, start=END, end=END + timedelta(days=1))
    assert result.verdict == NO_DATA
    assert result.coverage.status == "no_data"
    assert _checkpoints(pg_engine) == []
    assert verify(pg_engine, write=True).checkpoint_written["id"] == 1
    assert _checkpoints(pg_engine) == [1]
