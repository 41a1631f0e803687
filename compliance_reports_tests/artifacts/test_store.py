"""Artifact store: local folder and S3 (moto server), layout, retention, escape attempts."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from compliance_reports.artifacts.s3 import make_s3_client
from compliance_reports.artifacts.store import (
    LocalArtifactStore,
    S3ArtifactStore,
    UnsafeKeyError,
    run_key,
)

PARTS = ("acme-health", "hipaa-monthly", "2026-11-01", "run-7f3a", "hipaa-monthly_2026-11-01.csv")
ESCAPES = [
    ("..", "r", "p", "run", "f"),
    ("org", "r", "p", "run", ".."),
    ("org", "../../etc", "p", "run", "f"),
    ("org", "r", "p", "run", "a/b"),
    ("org", "r", "p", "run", "a\\b"),
    ("org", "", "p", "run", "f"),
    ("org", "r", "p", "run", "bad\x00name"),
    ("/etc", "r", "p", "run", "f"),
    ("org", "r", "p", "f"),  # wrong number of parts
]


@pytest.fixture
def local(tmp_path):
    return LocalArtifactStore(tmp_path / "artifacts")


@pytest.fixture
def s3(moto_s3_endpoint):
    client = make_s3_client(endpoint_url=moto_s3_endpoint)
    bucket = f"artifacts-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    return S3ArtifactStore(bucket, "compliance/reports", client)


@pytest.fixture(params=["local", "s3"])
def store(request):
    return request.getfixturevalue(request.param)


def test_put_get_list_exists(store, tmp_path):
    src = tmp_path / "src.csv"
    src.write_bytes(b"id,x\r\n1,\xc3\xa9\r\n")
    location = store.put_file(PARTS, src)
    assert location.endswith("acme-health/hipaa-monthly/2026-11-01/run-7f3a/hipaa-monthly_2026-11-01.csv")
    assert store.exists(location)
    back = store.get_file(location, tmp_path / "back" / "copy.csv")
    assert back.read_bytes() == src.read_bytes()
    second = store.put_bytes(PARTS[:-1] + ("manifest.json",), b'{"ok":true}\n')
    assert store.get_bytes(second) == b'{"ok":true}\n'
    listed = store.list_run(*PARTS[:4])
    assert [o.filename for o in listed] == ["hipaa-monthly_2026-11-01.csv", "manifest.json"]
    assert listed[0].sha256 == hashlib.sha256(src.read_bytes()).hexdigest()
    assert listed[0].size == src.stat().st_size and listed[0].location == location
    assert store.list_run("acme-health", "hipaa-monthly", "2026-11-01", "other-run") == []
    assert not store.exists(store.location_for(PARTS[:-1] + ("absent.pdf",)))
    with pytest.raises(FileNotFoundError):
        store.get_file(store.location_for(PARTS[:-1] + ("absent.pdf",)), tmp_path / "x")


@pytest.mark.parametrize("parts", ESCAPES)
def test_escape_attempts_are_rejected(store, tmp_path, parts):
    src = tmp_path / "f"
    src.write_bytes(b"x")
    with pytest.raises(UnsafeKeyError):
        store.put_file(parts, src)
    with pytest.raises(UnsafeKeyError):
        store.put_bytes(parts, b"x")


def test_locations_outside_the_base_are_refused(local, s3, tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("secret")
    for location in (str(outside), str(local.base / ".." / "outside.txt"),
                     str(local.base / "a" / "b" / "c" / "d" / ".." / ".." / ".." / ".." / ".." / "outside.txt"),
                     "relative/path"):
        with pytest.raises(UnsafeKeyError):
            local.get_file(location, tmp_path / "stolen")
    assert not (tmp_path / "stolen").exists()
    for location in ("s3://other-bucket/compliance/reports/a/b/c/d/e", f"s3://{s3.bucket}/elsewhere/a/b/c/d/e",
                     f"s3://{s3.bucket}/compliance/reports/a/../c/d/e/f"):
        with pytest.raises(UnsafeKeyError):
            s3.get_file(location, tmp_path / "stolen")


def test_symlink_out_of_the_base_is_refused(local, tmp_path):
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    local.base.mkdir(parents=True)
    (local.base / "evil-org").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafeKeyError):
        local.put_bytes(("evil-org", "r", "p", "run", "f.txt"), b"x")
    assert list(outside.iterdir()) == []


def test_s3_objects_carry_metadata(s3, tmp_path):
    src = tmp_path / "f.pdf"
    src.write_bytes(b"%PDF-1.7 test")
    location = s3.put_file(PARTS[:-1] + ("r.pdf",), src)
    head = s3.head(location)
    assert head["Metadata"]["sha256"] == hashlib.sha256(b"%PDF-1.7 test").hexdigest()
    assert head["Metadata"]["report-id"] == "hipaa-monthly"
    assert head["Metadata"]["period"] == "2026-11-01"
    assert location.startswith(f"s3://{s3.bucket}/compliance/reports/acme-health/")


def test_local_delete_older_than(local, tmp_path):
    old = local.put_bytes(("org", "r", "2026-01-01", "run1", "a.csv"), b"old")
    new = local.put_bytes(("org", "r", "2026-11-01", "run2", "b.csv"), b"new")
    past = time.time() - 40 * 86400
    os.utime(old, (past, past))
    deleted = local.delete_older_than(datetime.now(timezone.utc) - timedelta(days=30))
    assert deleted == [old]
    assert not local.exists(old) and local.exists(new)
    assert not (local.base / "org" / "r" / "2026-01-01").exists()  # emptied folders removed
    with pytest.raises(ValueError):
        local.delete_older_than(datetime.now())


def test_s3_delete_older_than(s3):
    a = s3.put_bytes(("org", "r", "2026-01-01", "run1", "a.csv"), b"a")
    b = s3.put_bytes(("org", "r", "2026-11-01", "run2", "b.csv"), b"b")
    # objects outside the store's prefix are never touched
    s3.client.put_object(Bucket=s3.bucket, Key="unrelated/keep.txt", Body=b"k")
    assert s3.delete_older_than(datetime.now(timezone.utc) - timedelta(days=1)) == []
    deleted = s3.delete_older_than(datetime.now(timezone.utc) + timedelta(minutes=5))
    assert deleted == sorted([a, b])
    assert not s3.exists(a) and not s3.exists(b)
    assert s3.client.head_object(Bucket=s3.bucket, Key="unrelated/keep.txt")


def test_run_key_validates():
    assert run_key(*PARTS) == PARTS
    with pytest.raises(UnsafeKeyError):
        run_key("org", "r", "p", "run", "..")
