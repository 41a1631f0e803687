"""Storage delivery: copy the stored files to a local folder or an S3-compatible bucket.

Keys come from the destination's key_template with placeholders {organization_id}
{report_id} {period} {format} {filename} {run_id}. A rendered key must stay inside its base:
it is relative, has no '..' or '.' or empty segment, no backslash and no control character;
for a local base the resolved target must also lie inside the resolved base folder.
The manifest is stored too (format "manifest"), so the stored set can be verified later.

S3 objects carry Metadata {sha256, report-id, period} and their media type. One ledger row per
destination: its recipient is the base location (s3://bucket/prefix or the local folder).
Each file's SHA-256 is checked against the publication before it is copied.

Evidence is never overwritten: a local file is created exclusively (written aside, then
hard-linked into place, which fails if the name exists; O_EXCL where links are not supported);
an S3 object is put after a head check (for endpoints that ignore conditions) with
If-None-Match: * (for a concurrent writer). A key that already holds the same content counts as
stored (a retry); one that holds other content fails the delivery, not retryably, and is left
as it is. Credentials that may not read the bucket (HEAD answers 403) rely on the condition
alone, and cannot tell their own earlier upload from someone else's.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from compliance_reports.delivery.errors import ConfigurationError, DeliveryError, SendResult
from compliance_reports.artifacts.checksums import sha256_file
from compliance_reports.artifacts.publication import Publication, PublishedFile

KEY_PLACEHOLDERS = ("organization_id", "report_id", "period", "format", "filename", "run_id")
DEFAULT_LINK_EXPIRY_S = 7 * 24 * 3600
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


# ---------------------------------------------------------------- keys


def check_key(key: str) -> str:
    """The key if it cannot leave its base, else ConfigurationError naming the problem."""
    if not key:
        raise ConfigurationError("storage key is empty")
    if "\\" in key:
        raise ConfigurationError(f"storage key {key!r} contains a backslash")
    if _CONTROL.search(key):
        raise ConfigurationError(f"storage key {key!r} contains a control character")
    if key.startswith("/") or re.match(r"^[A-Za-z]:", key):
        raise ConfigurationError(f"storage key {key!r} is absolute; keys must stay inside the base")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise ConfigurationError(
                f"storage key {key!r} has an empty, '.' or '..' segment; keys must stay inside the base"
            )
    return key


def render_key(template: str, fields: dict[str, object]) -> str:
    from compliance_reports.delivery.email_channel import render_placeholders

    key = render_placeholders(template, fields, KEY_PLACEHOLDERS, "key_template")
    return check_key(key)


def _key_fields(publication: Publication, f: PublishedFile) -> dict[str, object]:
    return {
        "organization_id": publication.organization_id,
        "report_id": publication.report_id,
        "period": publication.period,
        "format": f.format,
        "filename": f.filename,
        "run_id": publication.run_id or "",
    }


def _objects(publication: Publication) -> list[PublishedFile]:
    """The files to store: every exported file plus the manifest."""
    objects = list(publication.files)
    if publication.manifest_path and publication.manifest_path.name:
        size = publication.manifest_path.stat().st_size if publication.manifest_path.is_file() else 0
        objects.append(
            PublishedFile(
                filename=publication.manifest_path.name, path=publication.manifest_path,
                size=size, sha256=publication.manifest_sha256, media_type="application/json",
                format="manifest",
            )
        )
    return objects


def _prefix(destination) -> str:
    base = (destination.base_path or "").strip("/")
    return check_key(base) + "/" if base else ""


def planned_keys(destination, publication: Publication) -> dict[str, str]:
    """filename -> full key (S3: including the base_path prefix; local: relative to the base)."""
    prefix = _prefix(destination) if destination.provider == "s3" else ""
    keys: dict[str, str] = {}
    seen: dict[str, str] = {}
    for f in _objects(publication):
        key = prefix + render_key(destination.key_template, _key_fields(publication, f))
        if key in seen:
            raise ConfigurationError(
                f"key_template {destination.key_template!r} gives the same key {key!r} to "
                f"{seen[key]} and {f.filename}; include {{filename}} (or {{format}})"
            )
        seen[key] = f.filename
        keys[f.filename] = key
    return keys


def storage_location(destination) -> str:
    """The ledger recipient: s3://bucket/prefix or the absolute local base folder."""
    if destination.provider == "s3":
        base = (destination.base_path or "").strip("/")
        return f"s3://{destination.bucket}/{base}" if base else f"s3://{destination.bucket}"
    return str(_local_base(destination))


def _local_base(destination) -> Path:
    """A relative base_path is under the data folder, whatever the process's working directory."""
    from compliance_reports.settings import load_settings

    path = Path(os.path.expanduser(destination.base_path))
    if not path.is_absolute():
        path = load_settings().data_dir / path
    return path.resolve()


def local_target(destination, key: str) -> Path:
    base = _local_base(destination)
    target = (base / check_key(key)).resolve()
    if not target.is_relative_to(base):
        raise ConfigurationError(f"storage key {key!r} resolves outside the base folder")
    return target


# ---------------------------------------------------------------- S3 client


def s3_client(destination):
    from compliance_reports.artifacts.s3 import make_s3_client

    try:
        return make_s3_client(
            endpoint_url=destination.endpoint_url, region=destination.region,
            access_key_id_env=destination.access_key_id_env,
            secret_access_key_env=destination.secret_access_key_env,
        )
    except RuntimeError as exc:  # names the missing variable, never a value
        raise ConfigurationError(f"destination {destination.name}: {exc}") from None


def _classify_s3(exc: Exception, what: str) -> DeliveryError:
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

    if isinstance(exc, ClientError):
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
        code = exc.response.get("Error", {}).get("Code", "")
        retryable = status >= 500 or status in (408, 429) or code in ("SlowDown", "RequestTimeout")
        return DeliveryError(f"S3 {what} failed: {code} (HTTP {status})", retryable=retryable,
                             status_code=status or None)
    if isinstance(exc, NoCredentialsError):
        return DeliveryError(f"S3 {what} failed: no credentials", retryable=False)
    if isinstance(exc, EndpointConnectionError):
        return DeliveryError(f"S3 {what} failed: cannot reach the endpoint", retryable=True)
    if isinstance(exc, BotoCoreError):
        return DeliveryError(f"S3 {what} failed: {type(exc).__name__}", retryable=True)
    if isinstance(exc, DeliveryError):
        return exc
    return DeliveryError(f"S3 {what} failed: {type(exc).__name__}: {exc}", retryable=True)


# ---------------------------------------------------------------- deliver


def _check_sha(f: PublishedFile) -> None:
    if not f.path.is_file():
        raise DeliveryError(f"stored file {f.filename} is missing", retryable=False)
    if sha256_file(f.path) != f.sha256:
        raise DeliveryError(
            f"stored file {f.filename} does not match its recorded sha256; not delivered",
            retryable=False,
        )


class KeyTaken(DeliveryError):
    def __init__(self, key: str, found: str | None, expected: str) -> None:
        super().__init__(
            f"storage key {key} already holds other content (sha256 {found or 'unknown'}, not "
            f"{expected}); evidence is never overwritten, so this delivery fails: include "
            "{run_id} in key_template, or move the existing object away",
            retryable=False,
        )


def _copy_local(src: Path, target: Path, expected_sha: str, key: str) -> bool:
    """Create `target` with `src`'s content; False when it already held exactly that content."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists():
        return _same_local(target, expected_sha, key)
    fd, tmp = tempfile.mkstemp(prefix=".part-", dir=target.parent)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            while block := inp.read(1 << 20):
                digest.update(block)
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if digest.hexdigest() != expected_sha:
            raise DeliveryError(f"file {src.name} changed while being copied", retryable=True)
        try:
            os.link(tmp, target)  # atomic, and never replaces an existing name
        except FileExistsError:
            return _same_local(target, expected_sha, key)
        except OSError:  # no hard links here: exclusive create, then copy
            try:
                with open(target, "xb") as out, open(tmp, "rb") as inp:
                    shutil.copyfileobj(inp, out)
                    out.flush()
                    os.fsync(out.fileno())
            except FileExistsError:
                return _same_local(target, expected_sha, key)
        return True
    finally:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


def _same_local(target: Path, expected_sha: str, key: str) -> bool:
    found = sha256_file(target)
    if found != expected_sha:
        raise KeyTaken(key, found, expected_sha)
    return False


def _put_s3(client, destination, key: str, f: PublishedFile, publication: Publication) -> str:
    """Put one object unless the key exists; returns what happened for the provider response.

    The head check catches endpoints that ignore If-None-Match; the conditional put closes the
    race with a concurrent writer where it is supported.
    """
    from botocore.exceptions import ClientError

    existing = _s3_sha256(client, destination.bucket, key)
    if existing is not None:
        if existing != f.sha256:
            raise KeyTaken(key, existing, f.sha256)
        return f"{key} (already stored)"
    args = dict(
        Bucket=destination.bucket, Key=key, ContentType=f.media_type,
        ContentLength=f.path.stat().st_size,
        Metadata={"sha256": f.sha256, "report-id": publication.report_id, "period": publication.period},
    )
    try:
        with open(f.path, "rb") as body:
            result = client.put_object(Body=body, IfNoneMatch="*", **args)
    except ClientError as exc:
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if status == 501:  # no conditional writes here: the head check above has to do
            with open(f.path, "rb") as body:
                result = client.put_object(Body=body, **args)
        elif status == 412 or exc.response.get("Error", {}).get("Code") == "PreconditionFailed":
            found = _s3_sha256(client, destination.bucket, key)
            if found != f.sha256:
                raise KeyTaken(key, found, f.sha256) from None
            return f"{key} (already stored)"
        else:
            raise
    return f"{key} (etag {result.get('ETag', '').strip(chr(34))})"


def _s3_sha256(client, bucket: str, key: str) -> str | None:
    """The SHA-256 of an existing object (our metadata, else its content); None when absent."""
    from botocore.exceptions import ClientError

    try:
        head = client.head_object(Bucket=bucket, Key=key)
    except ClientError as exc:
        # 403: write-only credentials (AWS answers 403 for a missing key without ListBucket)
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") in (403, 404):
            return None
        raise
    recorded = (head.get("Metadata") or {}).get("sha256")
    if recorded:
        return recorded
    digest = hashlib.sha256()
    for block in client.get_object(Bucket=bucket, Key=key)["Body"].iter_chunks(1 << 20):
        digest.update(block)
    return digest.hexdigest()


def deliver_to_storage(destination, publication: Publication, *, now: datetime | None = None) -> SendResult:
    """Store every file (and the manifest); returns a summary of what went where."""
    keys = planned_keys(destination, publication)
    objects = _objects(publication)
    for f in objects:
        _check_sha(f)
    stored = []
    if destination.provider == "local":
        targets = {f.filename: local_target(destination, keys[f.filename]) for f in objects}
        for f in objects:
            target = targets[f.filename]
            try:
                created = _copy_local(f.path, target, f.sha256, keys[f.filename])
            except OSError as exc:
                raise DeliveryError(
                    f"writing {keys[f.filename]} failed: {exc.strerror or type(exc).__name__}",
                    retryable=True,
                ) from None
            stored.append(keys[f.filename] + ("" if created else " (already stored)"))
        return SendResult(f"stored {len(stored)} file(s) in {storage_location(destination)}: " + ", ".join(stored))
    client = s3_client(destination)
    for f in objects:
        key = keys[f.filename]
        try:
            stored.append(_put_s3(client, destination, key, f, publication))
        except Exception as exc:  # noqa: BLE001 - classified
            raise _classify_s3(exc, f"upload of {key}") from None
    return SendResult(
        f"stored {len(stored)} object(s) in {storage_location(destination)}: " + ", ".join(stored)
    )


def presigned_url(destination, key: str, expires_s: int = DEFAULT_LINK_EXPIRY_S) -> str:
    """A time-limited GET link (S3) or the absolute file path (local) for a stored key."""
    if destination.provider == "local":
        return str(local_target(destination, key))
    client = s3_client(destination)
    return client.generate_presigned_url(
        "get_object", Params={"Bucket": destination.bucket, "Key": check_key(key)},
        ExpiresIn=int(expires_s),
    )


def link_factory(
    destination, publication: Publication, expires_s: int = DEFAULT_LINK_EXPIRY_S
) -> Callable[[str], str]:
    """A `link_for(filename)` for files this destination stored."""
    keys = planned_keys(destination, publication)

    def link_for(filename: str) -> str:
        return presigned_url(destination, keys[filename], expires_s)

    return link_for


def remove_expired(destination, now: datetime | None = None) -> list[str]:
    """Delete stored objects older than retention_days; returns the removed keys.

    Only the destination's base (folder or bucket prefix) is touched. Without retention_days
    nothing is removed.
    """
    if not destination.retention_days:
        return []
    now = now or datetime.now(timezone.utc)
    cutoff = now - timedelta(days=destination.retention_days)
    removed: list[str] = []
    if destination.provider == "local":
        base = _local_base(destination)
        if not base.is_dir():
            return []
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.is_symlink():
                mtime = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
                if mtime < cutoff:
                    path.unlink()
                    removed.append(path.relative_to(base).as_posix())
        for folder in sorted((p for p in base.rglob("*") if p.is_dir()), key=lambda p: len(p.parts), reverse=True):
            try:
                folder.rmdir()  # only empty folders
            except OSError:
                pass
        return removed
    client = s3_client(destination)
    prefix = _prefix(destination)
    paginator = client.get_paginator("list_objects_v2")
    batch: list[str] = []

    def flush() -> None:
        if batch:
            client.delete_objects(
                Bucket=destination.bucket,
                Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True},
            )
            removed.extend(batch)
            batch.clear()

    for page in paginator.paginate(Bucket=destination.bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if obj["LastModified"] < cutoff:
                batch.append(obj["Key"])
                if len(batch) == 1000:
                    flush()
    flush()
    return removed
