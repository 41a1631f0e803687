"""Artifact store: local folder and S3 (moto server), layout, recorded removal, escape attempts."""

from __future__ import annotations

import errno
import hashlib
import os
import shutil
import stat
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from compliance_reports.artifacts.file_index import FileIndex, IndexedFile
from compliance_reports.artifacts.s3 import make_s3_client
from compliance_reports.artifacts.store import (
    LocalArtifactStore,
    S3ArtifactStore,
    UnsafeKeyError,
    run_key,
)
from compliance_reports.settings import load_settings

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


def _entry(location: str, content: bytes | None) -> IndexedFile:
    sha = hashlib.sha256(content).hexdigest() if content is not None else None
    return IndexedFile(id=1, kind="artifact", owner="", location=location, sha256=sha, size=None,
                       stored_at=datetime.now(timezone.utc))


def test_remove_recorded_deletes_only_the_recorded_content(store):
    a = store.put_bytes(("org", "r", "2026-01-01", "run1", "a.csv"), b"a")
    b = store.put_bytes(("org", "r", "2026-01-01", "run1", "b.csv"), b"b")
    assert store.remove_recorded(_entry(a, b"a")) == "removed"
    assert not store.exists(a) and store.exists(b)
    assert store.remove_recorded(_entry(a, b"a")) == "missing"
    # b now holds something else than what was recorded: it is not ours to delete
    assert store.remove_recorded(_entry(b, b"what we wrote once")) == "changed"
    assert store.exists(b)
    with pytest.raises(UnsafeKeyError):
        store.remove_recorded(_entry(store.location_for(PARTS).replace("acme-health", "../x"), b"a"))


def test_local_remove_recorded_removes_emptied_folders_only(local):
    a = local.put_bytes(("org", "r", "2026-01-01", "run1", "a.csv"), b"a")
    assert local.remove_recorded(_entry(a, b"a")) == "removed"
    assert not (local.base / "org").exists() and local.base.is_dir()


def test_writes_are_recorded_in_the_file_index(engine, tmp_path, moto_s3_endpoint):
    index = FileIndex(engine, "artifact")
    local = LocalArtifactStore(tmp_path / "data" / "artifacts", tmp_path / "data", index)
    location = local.put_bytes(PARTS, b"content")
    client = make_s3_client(endpoint_url=moto_s3_endpoint)
    bucket = f"artifacts-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    remote = S3ArtifactStore(bucket, "p", client, index=index).put_bytes(PARTS, b"other")
    recorded = {e.location: e.sha256 for e in index.expired(datetime.now(timezone.utc) + timedelta(seconds=1))}
    assert recorded == {location: hashlib.sha256(b"content").hexdigest(),
                        remote: hashlib.sha256(b"other").hexdigest()}


def test_artifact_folder_outside_the_storage_root_is_refused(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="outside the storage root"):
        LocalArtifactStore(tmp_path / "elsewhere", tmp_path / "root")
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "artifacts").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
    with pytest.raises(ValueError, match="outside the storage root"):
        LocalArtifactStore(tmp_path / "root" / "artifacts", tmp_path / "root")
    env = {"COMPLIANCE_DATA_DIR": str(tmp_path / "root"), "COMPLIANCE_ARTIFACT_DIR": str(tmp_path / "elsewhere")}
    with pytest.raises(ValueError, match="COMPLIANCE_ARTIFACT_DIR .* is outside the storage root"):
        load_settings(env)
    settings = load_settings({**env, "COMPLIANCE_STORAGE_ROOT": str(tmp_path)})
    assert settings.storage_root == tmp_path.resolve() and settings.artifacts_dir == (tmp_path / "elsewhere").resolve()


def test_artifact_store_link_planted_after_start_is_refused_at_write(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.mkdir()
    store = LocalArtifactStore(root / "artifacts", root)
    store.put_bytes(("org", "r", "p", "run", "first.csv"), b"x")
    # the folder of an organization is swapped for a link leading out of the root
    shutil.rmtree(root / "artifacts" / "org")
    (root / "artifacts" / "org").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafeKeyError, match="symbolic link"):
        store.put_bytes(("org", "r", "p", "run", "second.csv"), b"x")
    assert list(outside.iterdir()) == []


def test_run_key_validates():
    assert run_key(*PARTS) == PARTS
    with pytest.raises(UnsafeKeyError):
        run_key("org", "r", "p", "run", "..")


def test_local_put_file_hard_links_on_the_same_file_system(engine, tmp_path):
    index = FileIndex(engine, "artifact")
    store = LocalArtifactStore(tmp_path / "artifacts", tmp_path, index)
    src = tmp_path / "rendered.csv"
    src.write_bytes(b"id,x\r\n1,2\r\n")
    src.chmod(0o600)
    location = store.put_file(PARTS, src, hashlib.sha256(b"id,x\r\n1,2\r\n").hexdigest())
    stored, rendered = os.stat(location), os.stat(src)
    assert (stored.st_ino, stored.st_dev) == (rendered.st_ino, rendered.st_dev) and stored.st_nlink == 2
    assert stat.S_IMODE(stored.st_mode) == 0o644  # what a copy into the store gets
    assert sorted(p.name for p in Path(location).parent.iterdir()) == [PARTS[-1]]  # no .part left
    recorded = index.expired(datetime.now(timezone.utc) + timedelta(seconds=1))
    assert [(e.location, e.sha256) for e in recorded] == [(location, hashlib.sha256(src.read_bytes()).hexdigest())]


def test_local_put_file_copies_where_it_cannot_link(local, tmp_path, monkeypatch):
    src = tmp_path / "rendered.csv"
    src.write_bytes(b"content")

    def no_link(*args, **kwargs):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    location = local.put_file(PARTS, src)
    assert os.stat(location).st_ino != os.stat(src).st_ino and Path(location).read_bytes() == b"content"
    # a copy is checked against the SHA-256 the caller gave: nothing is placed when it differs
    with pytest.raises(ValueError, match="does not hold the content"):
        local.put_file((*PARTS[:-1], "other.csv"), src, hashlib.sha256(b"something else").hexdigest())
    assert not (Path(location).parent / "other.csv").exists()


def test_local_put_file_of_a_symbolic_link_stores_a_regular_copy(local, tmp_path):
    target = tmp_path / "target.csv"
    target.write_bytes(b"linked content")
    (tmp_path / "link.csv").symlink_to(target)
    location = local.put_file(PARTS, tmp_path / "link.csv")
    assert not Path(location).is_symlink() and Path(location).read_bytes() == b"linked content"
    assert os.stat(location).st_ino != os.stat(target).st_ino


def test_local_put_file_link_planted_after_start_is_refused(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "outside"
    outside.mkdir()
    store = LocalArtifactStore(root / "artifacts", root)
    src = tmp_path / "rendered.csv"
    src.write_bytes(b"x")
    store.put_file(("org", "r", "p", "run", "first.csv"), src)
    shutil.rmtree(root / "artifacts" / "org")
    (root / "artifacts" / "org").symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafeKeyError, match="symbolic link"):
        store.put_file(("org", "r", "p", "run", "second.csv"), src)
    assert list(outside.iterdir()) == []


def test_local_file_reads_in_place_and_stays_in_the_store(local, s3, tmp_path):
    location = local.put_bytes(PARTS, b"stored")
    assert local.local_file(location) == Path(location)
    with pytest.raises(UnsafeKeyError):
        local.local_file(str(tmp_path / "elsewhere.csv"))
    with pytest.raises(FileNotFoundError):
        local.local_file(local.location_for((*PARTS[:-1], "missing.csv")))
    assert s3.local_file(s3.put_bytes(PARTS, b"stored")) is None
