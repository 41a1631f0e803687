"""Storage delivery: moto in server mode for S3, a temporary folder for local."""

from __future__ import annotations

import hashlib
import os
import uuid
from datetime import datetime, timedelta, timezone

import pytest
import requests
from pydantic import ValidationError
from sqlalchemy import update

from compliance_reports.config.models import EmailDestination, StorageDestination
from compliance_reports.db.schema import stored_files
from compliance_reports.delivery import ledger
from compliance_reports.delivery.dispatcher import deliver_publication
from compliance_reports.delivery.errors import ConfigurationError
from compliance_reports.delivery.storage_channel import (
    check_key,
    presigned_url,
    remove_expired,
    s3_client,
)
from compliance_reports_tests.delivery.conftest import LOCAL_RECEIVER, fast_retry, make_publication


@pytest.fixture
def s3_dest(moto_s3_endpoint, monkeypatch):
    monkeypatch.setenv("CR_TEST_S3_KEY", "testing")
    monkeypatch.setenv("CR_TEST_S3_SECRET", "testing")
    bucket = f"reports-{uuid.uuid4().hex[:8]}"
    dest = StorageDestination.model_validate({
        "type": "storage", "name": "archive", "provider": "s3", "bucket": bucket,
        "base_path": "compliance", "endpoint_url": moto_s3_endpoint, "region": "us-east-1",
        "access_key_id_env": "CR_TEST_S3_KEY", "secret_access_key_env": "CR_TEST_S3_SECRET",
        "key_template": "{organization_id}/{report_id}/{period}/{format}/{filename}",
        "retention_days": 30, "retry": fast_retry().model_dump(), **LOCAL_RECEIVER,
    })
    s3_client(dest).create_bucket(Bucket=bucket)
    return dest


@pytest.fixture
def deliver(engine, clock):
    def run(publication, dests, **kw):
        kw.setdefault("now_fn", clock.now)
        kw.setdefault("sleep_fn", clock.sleep)
        return deliver_publication(engine, publication, dests, **kw)

    return run


def test_s3_upload_with_metadata_presigned_link_and_retention(s3_dest, publication, deliver, engine):
    (outcome,) = deliver(publication, [s3_dest])
    assert outcome.status == "sent"
    assert outcome.recipient == f"s3://{s3_dest.bucket}/compliance"
    client = s3_client(s3_dest)
    for f in publication.files:
        key = f"compliance/org-1/hipaa-weekly/2026-11-23/{f.format}/{f.filename}"
        head = client.head_object(Bucket=s3_dest.bucket, Key=key)
        assert head["Metadata"] == {"sha256": f.sha256, "report-id": "hipaa-weekly", "period": "2026-11-23"}
        assert head["ContentType"] == f.media_type
        url = presigned_url(s3_dest, key, expires_s=600)
        assert "X-Amz-Signature" in url or "Signature" in url
        got = requests.get(url, timeout=10)
        assert got.status_code == 200 and hashlib.sha256(got.content).hexdigest() == f.sha256
    manifest_key = "compliance/org-1/hipaa-weekly/2026-11-23/manifest/manifest.json"
    assert client.head_object(Bucket=s3_dest.bucket, Key=manifest_key)["Metadata"]["sha256"] == publication.manifest_sha256
    assert ledger.get_row(engine, outcome.row_id)["provider_response"].startswith("stored 4 object(s)")

    # nothing is older than 30 days yet; 31 days later the four recorded objects go, and only
    # they: objects someone else put under the same prefix or elsewhere stay
    client.put_object(Bucket=s3_dest.bucket, Key="elsewhere/keep.txt", Body=b"not ours")
    client.put_object(Bucket=s3_dest.bucket, Key="compliance/org-1/hipaa-weekly/foreign.txt", Body=b"not ours")
    now = datetime.now(timezone.utc)
    assert remove_expired(engine, s3_dest, now) == []
    removed = remove_expired(engine, s3_dest, now + timedelta(days=31))
    assert len(removed) == 4 and all(k.startswith(f"s3://{s3_dest.bucket}/compliance/") for k in removed)
    left = sorted(o["Key"] for o in client.list_objects_v2(Bucket=s3_dest.bucket).get("Contents", []))
    assert left == ["compliance/org-1/hipaa-weekly/foreign.txt", "elsewhere/keep.txt"]
    assert remove_expired(engine, s3_dest, now + timedelta(days=62)) == []  # the index is emptied


def test_oversize_email_links_to_the_stored_s3_copy(s3_dest, smtp_server, tmp_path, deliver):
    pub = make_publication(tmp_path / "big", {"report.pdf": 40_000})
    mail = EmailDestination.model_validate({
        "type": "email", "name": "officers", "host": smtp_server.host, "port": smtp_server.port,
        "security": "none", "from": "reports@example.org", "to": ["alice@example.org"],
        "max_message_mb": 0.02, "retry": fast_retry().model_dump(),
    })
    outcomes = deliver(pub, [mail, s3_dest])  # storage goes first whatever the order
    assert [o.channel for o in outcomes] == ["storage", "email"] and all(o.status == "sent" for o in outcomes)
    import email
    from email import policy

    msg = email.message_from_bytes(smtp_server.messages[0]["data"], policy=policy.default)
    text = msg.get_body(("plain",)).get_content()
    url = next(line.strip().removeprefix("download: ") for line in text.splitlines()
               if line.strip().startswith("download: "))
    assert requests.get(url, timeout=10).content == pub.files[0].path.read_bytes()


def local_dest(base: str, **overrides) -> StorageDestination:
    data = {"type": "storage", "name": "share", "provider": "local", "base_path": base,
            "retry": fast_retry().model_dump()}
    data.update(overrides)
    return StorageDestination.model_validate(data)


def test_local_copy_and_retention(storage_root, publication, deliver, engine):
    base = storage_root / "share"
    dest = local_dest("share", key_template="{report_id}/{period}/{run_id}/{filename}", retention_days=7)
    (outcome,) = deliver(publication, [dest])
    assert outcome.status == "sent" and outcome.recipient == str(base.resolve())
    for f in publication.files:
        stored = base / "hipaa-weekly/2026-11-23/run-0001" / f.filename
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == f.sha256
    assert not list(base.rglob(".*.part"))
    # Age comes from the file index (when the file was written), not from the file's mtime.
    old = base / "hipaa-weekly/2026-11-23/run-0001/report.pdf"
    past = datetime.now(timezone.utc) - timedelta(days=8)
    with engine.begin() as conn:
        conn.execute(update(stored_files).where(stored_files.c.location == str(old)).values(stored_at=past))
    young = base / "hipaa-weekly/2026-11-23/run-0001/events.csv"
    os.utime(young, (past.timestamp(), past.timestamp()))  # an old mtime alone does not expire a file
    assert remove_expired(engine, dest) == [str(old)]
    assert not old.exists() and young.exists()


def test_escaping_keys_are_rejected(tmp_path, storage_root, deliver, engine):
    base = storage_root / "share"
    outside = tmp_path / "outside"
    pub = make_publication(tmp_path / "a", {"report.pdf": 10})
    # the model refuses such a template; one stored before that check still cannot escape
    dest = StorageDestination.model_construct(**{**local_dest("share").__dict__, "key_template": "../outside/{filename}"})
    (outcome,) = deliver(pub, [dest])
    assert outcome.status == "dead" and "'..'" in outcome.error
    # a placeholder value cannot smuggle a path in either
    pub2 = make_publication(tmp_path / "b", {"report.pdf": 10}, report_id="../../outside")
    (outcome2,) = deliver(pub2, [local_dest("share", name="share2", key_template="{report_id}/{filename}")])
    assert outcome2.status == "dead" and "inside the base" in outcome2.error
    # nor a symbolic link inside the base
    base.mkdir(parents=True, exist_ok=True)
    outside.mkdir(exist_ok=True)
    (base / "link").symlink_to(outside)
    (outcome3,) = deliver(pub, [local_dest("share", name="share3", key_template="link/{filename}")])
    assert outcome3.status == "dead" and "symbolic link" in outcome3.error and str(base) in outcome3.error
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("key", ["/etc/passwd", "a/../../b", "a\\b", "a//b", "./a", "C:/x", "a\nb", ""])
def test_check_key_rejects(key):
    with pytest.raises(ConfigurationError):
        check_key(key)


def test_template_that_merges_files_is_rejected(tmp_path, publication, deliver):
    # Apply refuses a template without {filename}; one stored before that rule fails at send.
    with pytest.raises(ValidationError, match="filename"):
        local_dest("s", key_template="{report_id}/{period}/report")
    dest = local_dest("s").model_copy(update={"key_template": "{report_id}/{period}/report"})
    (outcome,) = deliver(publication, [dest])
    assert outcome.status == "dead" and "same key" in outcome.error


def test_changed_stored_file_is_not_delivered(storage_root, publication, deliver):
    publication.files[0].path.write_bytes(b"tampered")
    (outcome,) = deliver(publication, [local_dest("s")])
    assert outcome.status == "dead" and "does not match" in outcome.error
    assert not (storage_root / "s").exists() or not list((storage_root / "s").rglob("*.pdf"))


def test_local_key_with_other_content_is_never_overwritten(tmp_path, storage_root, deliver, engine):
    base = storage_root / "share"
    dest = local_dest("share", key_template="{report_id}/{period}/{filename}")  # no {run_id}
    first = make_publication(tmp_path / "run-1", {"report.pdf": 300}, run_id="run-1")
    (sent,) = deliver(first, [dest])
    assert sent.status == "sent"
    stored = base / "hipaa-weekly/2026-11-23/report.pdf"
    original = stored.read_bytes()

    # another delivery of the same content finds the file: success, nothing rewritten
    (again,) = deliver(first, [local_dest("share", name="share-again", key_template="{report_id}/{period}/{filename}")])
    assert again.status == "sent" and "already stored" in again.provider_response
    assert stored.read_bytes() == original

    other = make_publication(tmp_path / "run-2", {"report.pdf": 300}, seed=b"other content", run_id="run-2")
    (refused,) = deliver(other, [dest])
    assert refused.status == "dead" and refused.attempts == 1
    assert "already holds other content" in refused.error and "never overwritten" in refused.error
    assert stored.read_bytes() == original
    assert not list(base.rglob(".*.part"))


def test_s3_key_with_other_content_is_never_overwritten(s3_dest, tmp_path, deliver):
    client = s3_client(s3_dest)
    first = make_publication(tmp_path / "run-1", {"report.pdf": 300}, run_id="run-1")
    (sent,) = deliver(first, [s3_dest])
    key = "compliance/org-1/hipaa-weekly/2026-11-23/pdf/report.pdf"
    original = client.get_object(Bucket=s3_dest.bucket, Key=key)["Body"].read()

    same_again = s3_dest.model_copy(update={"name": "archive-again"})
    (again,) = deliver(first, [same_again])
    assert again.status == "sent" and "already stored" in again.provider_response

    other = make_publication(tmp_path / "run-2", {"report.pdf": 300}, seed=b"other content", run_id="run-2")
    (refused,) = deliver(other, [s3_dest])
    assert refused.status == "dead" and "already holds other content" in refused.error
    assert client.get_object(Bucket=s3_dest.bucket, Key=key)["Body"].read() == original
    assert client.head_object(Bucket=s3_dest.bucket, Key=key)["Metadata"]["sha256"] == first.files[0].sha256


def test_s3_conditional_put_refuses_a_concurrent_writer(s3_dest, tmp_path, monkeypatch):
    """The head check passed, then someone else wrote the key: If-None-Match keeps theirs."""
    from compliance_reports.delivery import storage_channel
    from compliance_reports.delivery.errors import DeliveryError

    pub = make_publication(tmp_path / "p", {"report.pdf": 300})
    client = s3_client(s3_dest)
    key = "compliance/org-1/hipaa-weekly/2026-11-23/pdf/report.pdf"
    real_head = storage_channel._s3_sha256
    calls = []

    def head_then_race(c, bucket, k):
        found = real_head(c, bucket, k)
        if not calls:
            client.put_object(Bucket=bucket, Key=k, Body=b"written meanwhile")
        calls.append(k)
        return found

    monkeypatch.setattr(storage_channel, "_s3_sha256", head_then_race)
    with pytest.raises(DeliveryError, match="already holds other content"):
        storage_channel._put_s3(client, s3_dest, key, pub.files[0], pub)
    assert client.get_object(Bucket=s3_dest.bucket, Key=key)["Body"].read() == b"written meanwhile"
