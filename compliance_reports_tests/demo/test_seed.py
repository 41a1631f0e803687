"""Demo audit traffic: determinism, hashes and chain read back, tampering, content coverage."""

from __future__ import annotations

import re
import statistics
import sys
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from compliance_reports.audit.hashing import row_hash, verify_chain
from compliance_reports.db import migrate
from compliance_reports.db.engine import make_engine
from compliance_reports.db.schema import audit_log
from compliance_reports.demo import seed as demo_seed
from compliance_reports.demo.seed import SeedOptions, generate_events, seed_audit_log, tamper_rows

# March 2026 holds the US (8th) and EU (29th) daylight-saving changes.
END = date(2026, 3, 31)
SLUG = re.compile(r"^[a-z0-9_-]+$")


def fresh_engine(path):
    engine = make_engine(f"sqlite:///{path}")
    migrate.upgrade_all(engine, engine)
    return engine


def read_rows(engine, organization_id=None):
    """Rows through SQLAlchemy (so the SQLite datetime round trip is exercised), chain order."""
    c = audit_log.c
    query = select(audit_log).order_by(c.organization_id, c.timestamp, c.id)
    if organization_id is not None:
        query = query.where(c.organization_id == organization_id)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(query).mappings()]


def by_org(rows):
    groups = defaultdict(list)
    for r in rows:
        groups[r["organization_id"]].append(r)
    return groups


def row_count(engine):
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(audit_log)).scalar_one()


def assert_hashes_and_chains(rows, expected_orgs):
    groups = by_org(rows)
    assert sorted(groups) == sorted(expected_orgs)
    for org, org_rows in groups.items():
        for r in org_rows:
            assert r["hash"] == row_hash(r), r["id"]
            assert r["timestamp"].tzinfo is not None
            assert r["timestamp"].microsecond % 1000 == 0
        report = verify_chain(org_rows)
        assert report.ok, (org, report.breaks[:3])
        assert report.rows == len(org_rows)
        assert org_rows[0]["prev_hash"] is None
        ids = [r["id"] for r in org_rows]
        assert ids == sorted(ids), "ids must ascend in chain order"


# ------------------------------------------------------------------ the 35-day, 3-org seed

COVERAGE = SeedOptions(orgs=3, days=35, events_per_day=300, seed=42, end_date=END, batch_size=4000)


@pytest.fixture(scope="module")
def coverage(tmp_path_factory):
    engine = fresh_engine(tmp_path_factory.mktemp("coverage") / "audit.db")
    calls = []
    result = seed_audit_log(engine, COVERAGE, progress=lambda done, total: calls.append((done, total)))
    rows = read_rows(engine)
    yield engine, result, rows, calls
    engine.dispose()


def test_seed_result_and_progress(coverage):
    engine, result, rows, calls = coverage
    total = 3 * 35 * 300
    assert result.rows == total == len(rows) == row_count(engine)
    assert result.organizations == ["org-stmarys", "org-nordklinik", "org-harbourview"]
    assert result.tampered_ids == []
    assert result.rows_per_second > 0 and result.seconds > 0
    assert result.first_timestamp == min(r["timestamp"] for r in rows)
    assert result.last_timestamp == max(r["timestamp"] for r in rows)
    assert result.first_timestamp >= datetime(2026, 2, 25, tzinfo=timezone.utc)
    assert result.last_timestamp < datetime(2026, 4, 1, tzinfo=timezone.utc)
    assert calls[-1] == (total, total)
    assert len(calls) == -(-total // 4000)
    assert [d for d, _ in calls] == sorted(d for d, _ in calls)
    per_day = Counter((r["organization_id"], r["timestamp"].date()) for r in rows)
    assert set(per_day.values()) == {300}


def test_every_row_hash_and_chain_verify_after_the_round_trip(coverage):
    _, result, rows, _ = coverage
    assert_hashes_and_chains(rows, result.organizations)


def test_generator_matches_the_inserted_rows(coverage):
    _, _, rows, _ = coverage
    generated = list(generate_events(COVERAGE))
    assert len(generated) == len(rows)
    # The database sorts organizations by name; the generator goes organization by organization.
    stored = {(r["organization_id"], r["timestamp"], r["hash"]) for r in rows}
    assert {(g["organization_id"], g["timestamp"], g["hash"]) for g in generated} == stored
    sample = generated[1234]
    assert set(sample) == set(demo_seed.INSERT_COLUMNS)
    assert isinstance(sample["details"], dict) and sample["timestamp"].tzinfo is timezone.utc


def test_same_options_same_rows_other_seed_other_rows(tmp_path):
    options = SeedOptions(orgs=2, days=4, events_per_day=250, seed=7, end_date=END)
    sequences, engines = [], []
    for name, opts in (("a", options), ("b", options), ("c", SeedOptions(**{**options.__dict__, "seed": 8}))):
        engine = fresh_engine(tmp_path / f"{name}.db")
        seed_audit_log(engine, opts)
        engines.append(engine)
        sequences.append([(r["timestamp"], r["organization_id"], r["action"], r["hash"])
                          for r in read_rows(engine)])
    assert sequences[0] == sequences[1]
    assert len(sequences[0]) == 2 * 4 * 250
    assert {s[3] for s in sequences[0]}.isdisjoint({s[3] for s in sequences[2]})
    # Tampering is deterministic for the seed too.
    assert tamper_rows(engines[0], 4, seed=5) == tamper_rows(engines[1], 4, seed=5)
    for engine in engines:
        engine.dispose()


def test_tampered_rows_are_exactly_what_verification_finds(tmp_path):
    engine = fresh_engine(tmp_path / "t.db")
    options = SeedOptions(orgs=2, days=3, events_per_day=400, seed=3, tamper=3, end_date=END)
    result = seed_audit_log(engine, options)
    assert len(result.tampered_ids) == 3 and result.tampered_ids == sorted(set(result.tampered_ids))
    rows = read_rows(engine)
    mismatched, breaks = 0, []
    for org_rows in by_org(rows).values():
        report = verify_chain(org_rows)
        assert report.chain_breaks == 0 and report.unhashed == 0
        mismatched += report.mismatched
        breaks += report.breaks
        tampered_here = [r["id"] for r in org_rows if r["id"] in result.tampered_ids]
        if tampered_here:
            assert report.first_break.event_id == tampered_here[0]
            assert report.first_break.kind == "content_changed"
    assert mismatched == 3
    assert sorted(b.event_id for b in breaks) == result.tampered_ids

    # Within one organization: the first break is the first tampered row in chain order.
    engine2 = fresh_engine(tmp_path / "t2.db")
    seed_audit_log(engine2, SeedOptions(orgs=2, days=3, events_per_day=400, seed=3, end_date=END))
    ids = tamper_rows(engine2, 3, seed=11, organization_id="org-nordklinik")
    org_rows = read_rows(engine2, "org-nordklinik")
    assert {r["id"] for r in org_rows} >= set(ids)
    report = verify_chain(org_rows)
    assert report.mismatched == 3 and [b.event_id for b in report.breaks] == [
        r["id"] for r in org_rows if r["id"] in ids
    ]
    assert verify_chain(read_rows(engine2, "org-stmarys")).ok
    engine.dispose()
    engine2.dispose()


def test_equal_timestamps_are_inserted_in_chain_order(tmp_path):
    engine = fresh_engine(tmp_path / "ties.db")
    seed_audit_log(engine, SeedOptions(orgs=1, days=1, events_per_day=20000, end_date=END))
    rows = read_rows(engine)
    ties = [n for n in Counter(r["timestamp"] for r in rows).values() if n > 1]
    assert ties, "this seed is known to produce rows sharing a millisecond"
    assert_hashes_and_chains(rows, ["org-stmarys"])
    engine.dispose()


def test_reseeding_refuses_overlap_and_chains_later_days(tmp_path):
    engine = fresh_engine(tmp_path / "r.db")
    first = SeedOptions(orgs=1, days=3, events_per_day=200, end_date=END)
    seed_audit_log(engine, first)
    with pytest.raises(ValueError, match="org-stmarys already has audit events"):
        seed_audit_log(engine, first)
    with pytest.raises(ValueError, match="interleave"):
        seed_audit_log(engine, SeedOptions(orgs=1, days=5, events_per_day=200, end_date=END + timedelta(days=2)))
    assert row_count(engine) == 600  # nothing written by the refused seeds
    before = read_rows(engine)
    # Later days of the same organization, plus a new one: appended and chained.
    result = seed_audit_log(engine, SeedOptions(orgs=2, days=2, events_per_day=200, end_date=END + timedelta(days=2)))
    assert result.rows == 800
    rows = read_rows(engine)
    stmarys = by_org(rows)["org-stmarys"]
    assert len(stmarys) == 1000
    assert stmarys[600]["prev_hash"] == before[-1]["hash"]
    report = verify_chain(stmarys)
    assert report.ok and report.rows == 1000
    assert_hashes_and_chains(rows, ["org-stmarys", "org-nordklinik"])
    engine.dispose()


def test_options_and_organizations():
    with pytest.raises(ValueError, match="orgs"):
        SeedOptions(orgs=0)
    with pytest.raises(ValueError, match="events_per_day"):
        SeedOptions(events_per_day=-1)
    with pytest.raises(ValueError, match="tamper"):
        SeedOptions(orgs=1, days=1, events_per_day=2, tamper=3)
    assert SeedOptions(end_date=END, days=35).day_range() == (date(2026, 2, 25), END)
    orgs = demo_seed.demo_organizations(8)
    assert [o[0] for o in orgs[:3]] == ["org-stmarys", "org-nordklinik", "org-harbourview"]
    assert orgs[5][0] == "org-demo-1" and orgs[7][0] == "org-demo-3"
    assert len({o[0] for o in orgs}) == 8
    for org_id, name, tz in orgs:
        assert SLUG.match(org_id) and name
        ZoneInfo(tz)


# ------------------------------------------------------------------ content


def test_content_covers_every_category(coverage):
    _, result, rows, _ = coverage
    actions = Counter(r["action"] for r in rows)
    expected = {
        "auth.login", "auth.logout", "auth.mfa.challenge",
        "fhir.patient.read", "fhir.patient.update", "fhir.observation.read",
        "fhir.observation.create", "fhir.encounter.read", "fhir.medicationrequest.create",
        "fhir.diagnosticreport.read", "fhir.condition.read",
        "data.export", "phi.disclosure", "record.share",
        "admin.role.assign", "admin.role.revoke", "admin.permission.grant", "admin.user.create",
        "admin.user.deactivate", "audit.config.update", "audit.retention.change",
        "emergency.access.grant", "consent.given", "consent.withdrawn",
        "data.transfer.cross_border", "security.breach.record",
    }
    for kind in ("access", "rectification", "erasure", "portability", "objection", "restriction"):
        expected |= {f"dsr.{kind}.request", f"dsr.{kind}.complete"}
    assert expected <= set(actions), expected - set(actions)
    assert {r["status"] for r in rows} == {"attempt", "success", "failure"}
    assert {r["data_classification"] for r in rows} == {"PUBLIC", "INTERNAL", "CONFIDENTIAL", "PHI"}
    assert all(r["organization_id"] in result.organizations for r in rows)

    for r in rows:
        sc = r["details"]["session_context"]
        assert set(sc) == {"ip_address", "user_agent", "session_id"}
        assert r["hash_algorithm"] == "SHA-256" and r["event_version"] == "1.0"
        assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}",
                            r["correlation_id"])
        assert r["retention_policy"] in ("hipaa-6y", "gdpr-default")
        assert isinstance(r["processing_latency"], int) and r["archived_at"] is None
    assert any(not r["outcome_description"].isascii() for r in rows)
    assert any('"' in r["outcome_description"] for r in rows)

    # FHIR events: PHI, patient ids, some access denied.
    fhir = [r for r in rows if r["action"].startswith("fhir.")]
    assert all(r["data_classification"] == "PHI" and r["details"]["patient_id"] for r in fhir)
    assert all(re.fullmatch(r"(Patient|Observation|Encounter|MedicationRequest|DiagnosticReport|Condition)/[\w-]+",
                            r["target_resource_id"]) for r in fhir)
    assert any(r["status"] == "failure" and r["outcome_description"] == "access denied" for r in fhir)
    assert all(r["target_resource_id"] == "Patient/" + r["details"]["patient_id"]
               for r in fhir if r["target_resource_type"] == "Patient")

    # Breaches, some notified more than 72 h after awareness, some within.
    breaches = [r["details"] for r in rows if r["action"] == "security.breach.record"]
    assert len(breaches) >= 3
    delays = []
    for d in breaches:
        assert {"breach_id", "became_aware_at", "notified_at", "affected_subjects", "description"} <= set(d)
        aware = datetime.fromisoformat(d["became_aware_at"])
        notified = datetime.fromisoformat(d["notified_at"])
        delays.append(notified - aware)
    assert any(x > timedelta(hours=72) for x in delays) and any(x <= timedelta(hours=72) for x in delays)

    # Disclosures with recipient and purpose; exports; transfers.
    disclosures = [r["details"] for r in rows if r["action"] in ("phi.disclosure", "record.share")]
    assert disclosures and all(
        {"name", "organization", "type"} <= set(d["recipient"]) and d["patient_id"]
        and d["purpose"] in {"treatment", "payment", "operations", "legal", "research", "public_health"}
        for d in disclosures
    )
    assert any(not d["recipient"]["name"].isascii() for d in disclosures)
    exports = [r["details"] for r in rows if r["action"] == "data.export"]
    assert any(d["record_count"] >= 500 for d in exports) and all("format" in d for d in exports)
    transfers = [r["details"] for r in rows if r["action"] == "data.transfer.cross_border"]
    assert transfers and all(re.fullmatch(r"[A-Z]{2}", d["destination_country"])
                             and d["mechanism"] in ("SCC", "adequacy", "BCR") for d in transfers)
    assert {"US", "IN", "CH"} <= {d["destination_country"] for d in transfers}

    # Admin changes are INTERNAL; consents carry the consent legal basis.
    assert all(r["data_classification"] == "INTERNAL" for r in rows if r["action"].startswith("admin."))
    for r in rows:
        if r["action"].startswith("consent."):
            g = r["details"]["gdpr_context"]
            assert g["legal_basis"] == "consent" and g["data_subject_id"] == r["details"]["patient_id"]

    # Legal basis on personal-data events, missing on about 5% of them.
    personal = [r for r in rows if r["data_classification"] in ("PHI", "CONFIDENTIAL")]
    missing = [r for r in personal if "legal_basis" not in r["details"].get("gdpr_context", {})]
    assert 0.02 < len(missing) / len(personal) < 0.09
    assert {r["details"]["gdpr_context"].get("legal_basis") for r in personal} >= {
        "consent", "contract", "legal_obligation", "vital_interests", "public_task",
        "legitimate_interests",
    }

    # Break-glass: a grant and reads flagged with a justification.
    glass = [r for r in rows if r["action"] == "fhir.patient.read" and r["details"].get("break_glass")]
    assert glass and all(r["details"]["justification"] for r in glass)
    grants = {r["correlation_id"] for r in rows if r["action"] == "emergency.access.grant"}
    assert {r["correlation_id"] for r in glass} <= grants


def test_login_failure_bursts(coverage):
    _, _, rows, _ = coverage
    failures = defaultdict(list)
    for r in rows:
        if r["action"] == "auth.login" and r["status"] == "failure":
            failures[(r["organization_id"], r["principal_id"])].append(r["timestamp"])
    bursts = 0
    for times in failures.values():
        times.sort()
        for i in range(len(times) - 4):
            if times[i + 4] - times[i] <= timedelta(minutes=5):
                bursts += 1
                break
    assert bursts >= 3
    # Some bursts end in a success by the same principal minutes later (same correlation id).
    by_corr = defaultdict(list)
    for r in rows:
        if r["action"] == "auth.login":
            by_corr[r["correlation_id"]].append(r["status"])
    assert any(len(s) >= 4 and s[-1] == "success" and set(s[:-1]) == {"failure"} for s in by_corr.values())


def test_local_time_load_and_after_hours_reads(coverage):
    _, _, rows, _ = coverage
    zones = {o: ZoneInfo(tz) for o, _, tz in demo_seed.demo_organizations(3)}
    for org, org_rows in by_org(rows).items():
        local_hours = [r["timestamp"].astimezone(zones[org]).hour for r in org_rows]
        business = sum(1 for h in local_hours if 7 <= h < 19)
        assert business / len(org_rows) > 0.85, org
        after_hours_phi = [
            r for r, h in zip(org_rows, local_hours)
            if (h >= 22 or h < 5) and r["data_classification"] == "PHI" and r["action"].endswith(".read")
        ]
        assert len(after_hours_phi) >= 10, org


def test_data_subject_requests_and_completions(coverage):
    _, _, rows, _ = coverage
    requests, completions = {}, {}
    for r in rows:
        m = re.fullmatch(r"dsr\.(\w+)\.(request|complete)", r["action"])
        if not m:
            continue
        d = r["details"]
        assert d["gdpr_context"]["data_subject_id"] == d["data_subject_id"]
        (requests if m.group(2) == "request" else completions)[d["request_id"]] = (m.group(1), r)
    assert requests and completions
    assert set(requests) - set(completions), "some requests are never completed"
    late = 0
    for request_id, (kind, done) in completions.items():
        assert request_id in requests and requests[request_id][0] == kind
        waited = done["timestamp"] - requests[request_id][1]["timestamp"]
        assert waited > timedelta(hours=20)
        late += waited > timedelta(days=31)
    assert late >= 1


def test_curious_principals_touch_many_more_patients(coverage):
    _, _, rows, _ = coverage
    for org, org_rows in by_org(rows).items():
        patients = defaultdict(set)
        for r in org_rows:
            if r["action"].startswith("fhir."):
                patients[r["principal_id"]].add(r["details"]["patient_id"])
        counts = sorted((len(v) for v in patients.values()), reverse=True)
        median = statistics.median(counts)
        assert counts[1] > 3 * median, (org, counts[:5], median)
        assert counts[2] < 2 * median, (org, counts[:5], median)
        principals = set(patients)
        assert all(re.fullmatch(r"(usr|svc)-[a-z]+(-\d{3})?", p) for p in principals)


# ------------------------------------------------------------------ PostgreSQL


@pytest.mark.postgres
def test_postgres_seed_reads_back_with_valid_hashes(pg_engine, tmp_path):
    # `pg_engine` (conftest): a fresh uniquely named database, migrated, dropped afterwards;
    # skipped when the server is absent, failed instead under CI=true.
    options = SeedOptions(orgs=2, days=3, events_per_day=500, seed=9, tamper=2, end_date=END,
                          batch_size=700)
    result = seed_audit_log(pg_engine, options)
    assert result.rows == 3000 and len(result.tampered_ids) == 2
    rows = read_rows(pg_engine)
    assert len(rows) == 3000
    mismatched = []
    for org_rows in by_org(rows).values():
        report = verify_chain(org_rows)
        assert report.chain_breaks == 0
        mismatched += [b.event_id for b in report.breaks]
        ids = [r["id"] for r in org_rows]
        assert ids == sorted(ids)
    assert sorted(mismatched) == result.tampered_ids
    # Same options on SQLite: the same events and hashes.
    engine = fresh_engine(tmp_path / "same.db")
    seed_audit_log(engine, SeedOptions(**{**options.__dict__, "tamper": 0}))
    assert [(r["organization_id"], r["timestamp"], r["hash"], r["details"]) for r in read_rows(engine)] == [
        (r["organization_id"], r["timestamp"], r["hash"], r["details"])
        for r in sorted(rows, key=lambda r: (r["organization_id"], r["timestamp"], r["id"]))
    ]
    engine.dispose()
    with pytest.raises(ValueError, match="interleave"):
        seed_audit_log(pg_engine, options)


@pytest.mark.postgres
def test_postgres_copy_seed_gives_the_same_rows_as_sqlite(pg_engine, tmp_path):
    """Seeding PostgreSQL goes through COPY; every column of every row, ids included, equals
    the SQLite seed of the same options (whose insert is a plain executemany)."""
    options = SeedOptions(orgs=2, days=2, events_per_day=400, seed=42, end_date=END, batch_size=300)
    seed_audit_log(pg_engine, options)
    engine = fresh_engine(tmp_path / "same.db")
    seed_audit_log(engine, options)
    by_id = lambda rows: sorted(rows, key=lambda r: r["id"])  # noqa: E731
    sqlite_rows, pg_rows = by_id(read_rows(engine)), by_id(read_rows(pg_engine))
    engine.dispose()
    assert len(pg_rows) == options.total_rows
    assert pg_rows == sqlite_rows


@pytest.mark.postgres
def test_copy_text_escapes_what_would_break_a_line(pg_engine):
    from compliance_reports.demo.insert import INSERT_COLUMNS, _insert_postgresql

    awkward = 'tab\there, new\nline, cr\rback\\slash \\N and "quotes" é\u2028'
    row = {c: None for c in INSERT_COLUMNS}
    row.update(timestamp="2026-03-01 10:00:00.123000", action=awkward, status="success",
               organization_id="org-x", processing_latency=7, outcome_description="",
               details='{"k": "v\\\\n \\"q\\""}')
    assert _insert_postgresql(pg_engine, iter([tuple(row[c] for c in INSERT_COLUMNS)]), 10, 1, None) == 1
    (back,) = read_rows(pg_engine)
    assert back["action"] == awkward and back["outcome_description"] == "" and back["principal_id"] is None
    assert back["processing_latency"] == 7 and back["details"] == {"k": 'v\\n "q"'}
    assert back["timestamp"] == datetime(2026, 3, 1, 10, 0, 0, 123000, tzinfo=timezone.utc)


# ------------------------------------------------------------------ pinned output
#
# Golden reports and report numbers are computed from seeded data, so the seed's output is part
# of its contract: the digests below were computed by the seed before its speed work (commit
# 034c889) and must never change for these options. Six organizations (one beyond the named
# five, in UTC) over 40 days reach every traffic category, a breach, a request answered after
# more than a month, DST changes and batch boundaries that cut through days.
PINNED = SeedOptions(orgs=6, days=40, events_per_day=150, seed=42, end_date=END, batch_size=5000)
PINNED_STORED_SQLITE = "7b44d6c4683e21a4e297c844ee675eb8fc926112db84a47423d3397fcc743ba2"
PINNED_GENERATED = "c3e210ef46e973c3cc3324080e97699edba167c10af57478d35dbc027e1d5ff4"
PINNED_READ_BACK = "bfb89e4f7b55950a33409385810687dfafe00ac44c93f87493c0013014abc965"


def _digest(lines):
    import hashlib

    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode("utf-8") + b"\n")
    return h.hexdigest()


def _read_back_digest(engine):
    """Every column of every row in id order as SQLAlchemy reads it back, on either backend
    (details with sorted keys: jsonb keeps its own key order)."""
    import json

    c = audit_log.c
    with engine.connect() as conn:
        rows = conn.execute(select(audit_log).order_by(c.id)).mappings().all()
    return _digest(
        repr([r["timestamp"].isoformat() if k == "timestamp"
              else json.dumps(r[k], ensure_ascii=False, sort_keys=True) if k == "details"
              else r[k] for k in sorted(r.keys())])
        for r in rows
    )


@pytest.fixture(scope="module")
def pinned_sqlite(tmp_path_factory):
    engine = fresh_engine(tmp_path_factory.mktemp("pinned") / "audit.db")
    seed_audit_log(engine, PINNED)
    yield engine
    engine.dispose()


def test_stored_rows_are_byte_for_byte_pinned(pinned_sqlite):
    import sqlite3

    with sqlite3.connect(pinned_sqlite.url.database) as conn:
        rows = conn.execute("SELECT * FROM audit_log ORDER BY id").fetchall()
    assert len(rows) == PINNED.total_rows == 36_000
    assert _digest(repr(r) for r in rows) == PINNED_STORED_SQLITE
    assert _read_back_digest(pinned_sqlite) == PINNED_READ_BACK


def test_generated_events_are_pinned():
    import json

    assert _digest(
        repr([e["timestamp"].isoformat() if k == "timestamp"
              else json.dumps(e[k], ensure_ascii=False) if k == "details" else e[k]
              for k in demo_seed.INSERT_COLUMNS])
        for e in generate_events(PINNED)
    ) == PINNED_GENERATED


@pytest.mark.postgres
def test_postgres_seed_is_pinned(pg_engine):
    switch = sys.getswitchinterval()
    seed_audit_log(pg_engine, PINNED)
    assert _read_back_digest(pg_engine) == PINNED_READ_BACK
    assert sys.getswitchinterval() == switch


@pytest.mark.postgres
def test_generated_copy_lines_are_escaped_as_a_batch(pg_engine):
    """The lines of ``_rows`` mode "copy" are escaped batch-wide: a backslash or CR in a value
    arrives intact, COPY_NULL becomes NULL, and a value holding a separator is refused."""
    from compliance_reports.demo.insert import COPY_NULL, INSERT_COLUMNS, _insert_postgresql, _lines_copy_data

    def line(**values):
        row = {c: COPY_NULL for c in INSERT_COLUMNS}
        row.update(timestamp="2026-03-01 10:00:00.123000+00", status="success", organization_id="org-x",
                   processing_latency="7", **values)
        return "\t".join(row[c] for c in INSERT_COLUMNS) + "\n"

    lines = [line(action="back\\slash \\N", outcome_description="cr\rhere", details='{"k":"v\\"q\\\\n"}'),
             line(action="plain", outcome_description="", details="{}")]
    assert _insert_postgresql(pg_engine, iter(lines), 1, 2, None, _lines_copy_data) == 2
    first, second = sorted(read_rows(pg_engine), key=lambda r: r["id"])
    assert first["action"] == "back\\slash \\N" and first["outcome_description"] == "cr\rhere"
    assert first["details"] == {"k": 'v"q\\n'} and first["principal_id"] is None and first["ttl"] is None
    assert second["outcome_description"] == "" and second["archived_at"] is None
    with pytest.raises(ValueError, match="tab or a newline"):
        _lines_copy_data([line(action="a\tb")])
    with pytest.raises(ValueError, match="tab or a newline"):
        _lines_copy_data([line(action="a\nb")])


@pytest.mark.postgres
def test_a_generation_failure_leaves_exactly_the_batches_copied_before_it(pg_engine):
    """Batches are copied by a thread while the next is generated: a failure in generation still
    lets the batch in flight commit, and nothing after it."""
    from compliance_reports.demo.insert import _insert_postgresql, _lines_copy_data

    options = SeedOptions(orgs=1, days=1, events_per_day=50, end_date=END)

    def failing():
        for i, line in enumerate(demo_seed._rows(options, None, "copy")):
            if i == 25:
                raise RuntimeError("generation failed")
            yield line

    calls = []
    switch = sys.getswitchinterval()
    with pytest.raises(RuntimeError, match="generation failed"):
        _insert_postgresql(pg_engine, failing(), 10, 50, lambda done, total: calls.append(done),
                           _lines_copy_data)
    assert row_count(pg_engine) == 20
    assert calls == [10]  # the second batch committed while the third failed; not reported
    assert sys.getswitchinterval() == switch  # lowered while copying, restored


def test_table_draws_pick_what_random_choices_picks():
    """The day planner draws hours and categories through lookup tables; from the same random
    state they pick exactly what `random.choices` picks, and consume the same numbers."""
    import random
    from itertools import accumulate

    from compliance_reports.demo.vocabulary import _CATEGORY_WEIGHTS, _CUM_CATEGORY, _DIURNAL, _choices_table, _draw

    categories = [c for c, _ in _CATEGORY_WEIGHTS]
    cases = [(categories, _CUM_CATEGORY), (range(24), list(accumulate(_DIURNAL))),
             (range(24), list(accumulate(_DIURNAL[5:] + _DIURNAL[:5]))), ("abc", [0, 1, 1])]
    for seed in range(20):
        for population, cum in cases:
            expected, actual = random.Random(seed), random.Random(seed)
            assert (_draw(_choices_table(population, cum), 3000, actual.random)
                    == expected.choices(population, cum_weights=cum, k=3000))
            assert actual.random() == expected.random()
    # A product rounded up to the total picks the last element, as choices' capped bisection does.
    assert _draw(_choices_table("ab", [1, 3]), 1, lambda: 1.0) == ["b"]
