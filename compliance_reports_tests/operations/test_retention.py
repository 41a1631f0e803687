"""Retention removes only files the project wrote and recorded, on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import select, update

from compliance_reports.artifacts.file_index import FileIndex
from compliance_reports.artifacts.s3 import make_s3_client
from compliance_reports.artifacts.store import LocalArtifactStore, S3ArtifactStore
from compliance_reports.config.models import StorageDestination
from compliance_reports.db.schema import retention_log, stored_files
from compliance_reports.delivery.dispatcher import deliver_publication
from compliance_reports.operations.retention import purge_files
from compliance_reports_tests.delivery.conftest import make_publication

NOW = datetime.now(timezone.utc)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db(request):
    return request.getfixturevalue("engine" if request.param == "sqlite" else "pg_engine")


@pytest.fixture
def root(tmp_path, monkeypatch):
    root = tmp_path / "data"
    monkeypatch.setenv("COMPLIANCE_DATA_DIR", str(root))
    return root


def _age(engine, days: float) -> None:
    with engine.begin() as conn:
        conn.execute(update(stored_files).values(stored_at=NOW - timedelta(days=days)))


def _plant(*paths) -> list:
    old = time.time() - 400 * 86400
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("-----BEGIN OPENSSH PRIVATE KEY-----\nnot ours\n")
        os.utime(path, (old, old))
    return list(paths)


def test_only_recorded_files_are_removed(db, root, tmp_path):
    store = LocalArtifactStore(root / "artifacts", root, FileIndex(db, "artifact"))
    kept_young = store.put_bytes(("org-1", "r", "2026-11-01", "run-1", "young.csv"), b"young")
    old = [store.put_bytes(("org-1", "r", "2026-01-01", "run-0", name), name.encode())
           for name in ("report.json", "events.parquet")]
    with db.begin() as conn:  # only these two are old
        conn.execute(update(stored_files).where(stored_files.c.location.in_(old))
                     .values(stored_at=NOW - timedelta(days=40)))

    archive = StorageDestination.model_validate({
        "type": "storage", "name": "archive", "provider": "local", "base_path": "delivered",
        "key_template": "{report_id}/{period}/{filename}", "retention_days": 30,
    })
    publication = make_publication(tmp_path / "exported")
    (outcome,) = deliver_publication(db, publication, [archive], sleep_fn=lambda s: None)
    assert outcome.status == "sent"
    delivered = sorted((root / "delivered").rglob("*.*"))
    assert len(delivered) == 4
    with db.begin() as conn:
        conn.execute(update(stored_files).where(stored_files.c.owner == "archive")
                     .values(stored_at=NOW - timedelta(days=31)))

    # What a careless base_path used to put at risk: keys and sources next to our files.
    foreign = _plant(root / "artifacts" / "org-1" / "r" / "2026-01-01" / "run-0" / "id_rsa",
                     root / "artifacts" / "notes.py",
                     root / "delivered" / "hipaa-weekly" / "2026-11-23" / "id_ed25519",
                     root / "delivered" / "main.c")

    result = purge_files(db, store, [archive], NOW, artifact_retention_days=30, run_id="ret-1")
    assert sorted(result.artifacts) == sorted(old)
    assert sorted(result.destination_objects) == sorted(f"archive:{p}" for p in delivered)
    assert result.problems == []
    assert all(p.read_text().endswith("not ours\n") for p in foreign)
    assert not any(os.path.exists(p) for p in old) and all(not p.exists() for p in delivered)
    assert store.exists(kept_young)
    with db.connect() as conn:
        logged = conn.execute(select(retention_log.c.kind, retention_log.c.location, retention_log.c.run_id)).all()
        left = conn.execute(select(stored_files.c.location)).scalars().all()
    assert sorted((k, loc) for k, loc, _ in logged) == sorted(
        [("artifact", loc) for loc in old] + [("destination_object", f"archive:{p}") for p in delivered])
    assert {r for _, _, r in logged} == {"ret-1"}
    assert left == [kept_young]


def test_a_recorded_file_replaced_by_other_content_is_kept(db, root):
    store = LocalArtifactStore(root / "artifacts", root, FileIndex(db, "artifact"))
    location = store.put_bytes(("org-1", "r", "p", "run", "a.csv"), b"ours")
    with open(location, "w") as handle:
        handle.write("someone else's file now")
    _age(db, 40)
    logs: list[str] = []
    result = purge_files(db, store, [], NOW, artifact_retention_days=30, log=logs.append)
    assert result.artifacts == [] and os.path.exists(location)
    assert any("no longer the one stored" in line for line in logs)


def test_s3_artifacts_are_removed_by_record_not_by_listing(db, moto_s3_endpoint):
    client = make_s3_client(endpoint_url=moto_s3_endpoint)
    bucket = f"artifacts-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    store = S3ArtifactStore(bucket, "compliance", client, index=FileIndex(db, "artifact"))
    ours = store.put_bytes(("org-1", "r", "p", "run", "a.csv"), b"a")
    client.put_object(Bucket=bucket, Key="compliance/org-1/r/p/run/foreign.csv", Body=b"not ours")
    _age(db, 40)
    result = purge_files(db, store, [], NOW, artifact_retention_days=30)
    assert result.artifacts == [ours] and not store.exists(ours)
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == ["compliance/org-1/r/p/run/foreign.csv"]


def test_one_failing_destination_does_not_stop_the_others(db, root, tmp_path):
    store = LocalArtifactStore(root / "artifacts", root, FileIndex(db, "artifact"))
    good = StorageDestination.model_validate({"type": "storage", "name": "good", "provider": "local",
                                              "base_path": "good", "retention_days": 1})
    bad = StorageDestination.model_validate({"type": "storage", "name": "bad", "provider": "s3", "bucket": "bkt",
                                             "endpoint_url": "http://127.0.0.1:9", "retention_days": 1,
                                             "access_key_id_env": "CR_UNSET_KEY_ID"})
    FileIndex(db, "destination", "bad").record("s3://bkt/x", "0" * 64, 1)
    (outcome,) = deliver_publication(db, make_publication(tmp_path / "p"), [good], sleep_fn=lambda s: None)
    assert outcome.status == "sent"
    _age(db, 5)
    result = purge_files(db, store, [bad, good], NOW, artifact_retention_days=30)
    assert len(result.destination_objects) == 4 and len(result.problems) == 1
    assert "destination bad" in result.problems[0]
