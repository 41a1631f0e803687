"""Storage delivery: copy the stored files to a local folder or an S3-compatible bucket.

Keys come from the destination's key_template with placeholders {organization_id}
{report_id} {period} {format} {filename} {run_id}. A rendered key must stay inside its base:
it is relative, has no '..' or '.' or empty segment, no backslash and no control character.
A local base is a folder relative to the storage root (COMPLIANCE_STORAGE_ROOT); every write
descends from the root without following a link out of it (and no link in the key may leave
the base), so a symbolic link planted after apply is refused at write time and nothing is
written outside. The manifest is stored too (format "manifest"), so the stored set can be
verified later.

Every file written is recorded in the file index (owner: the destination's name); retention
removes only recorded files older than retention_days that still hold the recorded content.
An S3 client is guarded (outbound.py) unless the destination sets allow_private_network.

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
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from compliance_reports.artifacts import storage_root
from compliance_reports.artifacts.checksums import sha256_file
from compliance_reports.artifacts.file_index import FileIndex, IndexedFile
from compliance_reports.artifacts.public_links import DEFAULT_LINK_EXPIRY_S, public_url
from compliance_reports.artifacts.publication import Publication, PublishedFile
from compliance_reports.delivery.errors import ConfigurationError, DeliveryError, SendResult

KEY_PLACEHOLDERS = ("organization_id", "report_id", "period", "format", "filename", "run_id")
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
    """The ledger recipient: s3://bucket/prefix or the local base folder under the storage root.

    Lexical (links are not resolved), so it stays the same on every attempt.
    """
    if destination.provider == "s3":
        base = (destination.base_path or "").strip("/")
        return f"s3://{destination.bucket}/{base}" if base else f"s3://{destination.bucket}"
    parts = [p for p in destination.base_path.split("/") if p not in ("", ".")]
    return str(_root().joinpath(*parts))


def _root() -> Path:
    from compliance_reports.settings import load_settings

    return load_settings().storage_root


def _local_base(destination) -> tuple[Path, tuple[str, ...]]:
    """The checked base folder and its parts below the storage root."""
    try:
        base = storage_root.check_folder(_root(), destination.base_path, "base_path")
        return base, storage_root.relative_parts(destination.base_path)
    except storage_root.OutsideRootError as exc:
        raise ConfigurationError(f"destination {destination.name}: {exc}") from None


def local_target(destination, key: str) -> Path:
    base, _ = _local_base(destination)
    target = (base / check_key(key)).resolve()
    if not target.is_relative_to(base.resolve()):
        raise ConfigurationError(f"storage key {key!r} resolves outside the base folder")
    return target


# ---------------------------------------------------------------- S3 client


def s3_client(destination):
    """A client for the destination's bucket; unless allow_private_network, it connects only to
    public addresses (checked at every connection) and ignores proxies from the environment."""
    from compliance_reports.artifacts.s3 import make_s3_client
    from compliance_reports.delivery.outbound import guard_boto_client

    guarded = not destination.allow_private_network
    try:
        client = make_s3_client(
            endpoint_url=destination.endpoint_url, region=destination.region,
            access_key_id_env=destination.access_key_id_env,
            secret_access_key_env=destination.secret_access_key_env,
            proxies={} if guarded else None,
        )
    except RuntimeError as exc:  # names the missing variable, never a value
        raise ConfigurationError(f"destination {destination.name}: {exc}") from None
    if guarded:
        guard_boto_client(client)
    return client


def _classify_s3(exc: Exception, what: str) -> DeliveryError:
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

    from compliance_reports.delivery.outbound import blocked_cause

    blocked = blocked_cause(exc)
    if blocked is not None:
        return DeliveryError(f"S3 {what} refused: endpoint_url {blocked}", retryable=False)
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


def _checked_copy(src: Path, expected_sha: str):
    def write(out) -> None:
        digest = hashlib.sha256()
        with open(src, "rb") as inp:
            while block := inp.read(1 << 20):
                digest.update(block)
                out.write(block)
        if digest.hexdigest() != expected_sha:
            raise DeliveryError(f"file {src.name} changed while being copied", retryable=True)

    return write


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


def _store_local(destination, objects, keys, index: FileIndex | None, now: datetime) -> list[str]:
    root = _root()
    _, base_parts = _local_base(destination)  # checked again here: a link planted since apply
    stored = []
    for f in objects:
        key = keys[f.filename]
        note = ""
        try:
            storage_root.write_file(
                root, (*base_parts, *check_key(key).split("/")), _checked_copy(f.path, f.sha256),
                boundary_parts=len(base_parts), exclusive=True,
            )
        except storage_root.NameTaken as taken:
            if taken.sha256 != f.sha256:
                raise KeyTaken(key, taken.sha256, f.sha256) from None
            note = " (already stored)"  # a retry of a write that went through
        except storage_root.OutsideRootError as exc:
            raise ConfigurationError(f"destination {destination.name}: storage key {key!r}: {exc}") from None
        except OSError as exc:
            raise DeliveryError(
                f"writing {key} failed: {exc.strerror or type(exc).__name__}", retryable=True
            ) from None
        if index is not None:
            index.record(str(root.joinpath(*base_parts, *key.split("/"))), f.sha256, f.size, now)
        stored.append(key + note)
    return stored


def deliver_to_storage(
    destination, publication: Publication, *, now: datetime | None = None, index: FileIndex | None = None
) -> SendResult:
    """Store every file (and the manifest), recording each in `index`; returns a summary."""
    now = now or datetime.now(timezone.utc)
    keys = planned_keys(destination, publication)
    objects = _objects(publication)
    for f in objects:
        _check_sha(f)
    if destination.provider == "local":
        stored = _store_local(destination, objects, keys, index, now)
        return SendResult(f"stored {len(stored)} file(s) in {storage_location(destination)}: " + ", ".join(stored))
    client = s3_client(destination)
    stored = []
    for f in objects:
        key = keys[f.filename]
        try:
            stored.append(_put_s3(client, destination, key, f, publication))
        except DeliveryError:
            raise
        except Exception as exc:  # noqa: BLE001 - classified
            raise _classify_s3(exc, f"upload of {key}") from None
        if index is not None:
            index.record(f"s3://{destination.bucket}/{key}", f.sha256, f.size, now)
    return SendResult(
        f"stored {len(stored)} object(s) in {storage_location(destination)}: " + ", ".join(stored)
    )


def presigned_url(destination, key: str, expires_s: int = DEFAULT_LINK_EXPIRY_S) -> str | None:
    """A time-limited GET link (S3), or for a local destination the public URL of the file
    (COMPLIANCE_PUBLIC_BASE_URL, see artifacts.public_links) or None without one."""
    if destination.provider == "local":
        from compliance_reports.settings import load_settings

        settings = load_settings()
        return public_url(local_target(destination, key), settings.storage_root, settings.public_base_url)
    client = s3_client(destination)
    return client.generate_presigned_url(
        "get_object", Params={"Bucket": destination.bucket, "Key": check_key(key)},
        ExpiresIn=int(expires_s),
    )


def link_factory(
    destination, publication: Publication, expires_s: int = DEFAULT_LINK_EXPIRY_S
) -> Callable[[str], str | None]:
    """A `link_for(filename)` for files this destination stored."""
    keys = planned_keys(destination, publication)

    def link_for(filename: str) -> str | None:
        return presigned_url(destination, keys[filename], expires_s)

    return link_for


def remove_expired(engine, destination, now: datetime | None = None, log: Callable[[str], None] | None = None) -> list[str]:
    """Delete the files this destination stored more than retention_days ago; returns their
    locations. Only files recorded in the file index are considered, and only while they hold
    the recorded content; nothing is listed or walked. Without retention_days nothing goes."""
    if not destination.retention_days:
        return []
    now = now or datetime.now(timezone.utc)
    index = FileIndex(engine, "destination", destination.name)
    expired = index.expired(now - timedelta(days=destination.retention_days))
    if not expired:
        return []
    remove = _local_remover(destination) if destination.provider == "local" else _s3_remover(destination)
    removed = []
    for entry in expired:
        try:
            outcome = remove(entry)
        except (storage_root.OutsideRootError, ValueError) as exc:
            outcome = f"refused: {exc}"
        if outcome == "removed":
            removed.append(entry.location)
        elif log is not None and outcome != "missing":
            log(f"destination {destination.name}: kept {entry.location}: "
                + ("its content is no longer the one delivered" if outcome == "changed" else outcome))
        if outcome in ("removed", "missing", "changed"):  # a refused one is tried again next time
            index.forget(entry)
    return removed


def _local_remover(destination) -> Callable[[IndexedFile], str]:
    root = _root()
    base_parts = storage_root.relative_parts(destination.base_path)

    def remove(entry: IndexedFile) -> str:
        parts = Path(entry.location).relative_to(root).parts  # ValueError: not under the root
        stop = len(base_parts) if parts[: len(base_parts)] == base_parts else len(parts) - 1
        return storage_root.remove_file(root, parts, entry.sha256, stop_parts=stop)

    return remove


def _s3_remover(destination) -> Callable[[IndexedFile], str]:
    client = s3_client(destination)

    def remove(entry: IndexedFile) -> str:
        bucket, _, key = entry.location.removeprefix("s3://").partition("/")
        if not entry.location.startswith("s3://") or not bucket or not key:
            raise ValueError(f"{entry.location!r} is not an s3:// location")
        try:
            head = client.head_object(Bucket=bucket, Key=key)
        except Exception as exc:  # noqa: BLE001 - classified
            if getattr(exc, "response", {}).get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return "missing"
            raise _classify_s3(exc, f"check of {key}") from None
        if entry.sha256 is not None and head.get("Metadata", {}).get("sha256") != entry.sha256:
            return "changed"
        client.delete_object(Bucket=bucket, Key=key)
        return "removed"

    return remove
