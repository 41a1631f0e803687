"""Where a run's files are kept: a local folder or an S3-compatible bucket/prefix.

One layout for both:

    {organization_id}/{report_id}/{period}/{run_id}/{filename}

Key parts are validated one by one (non-empty, at most 255 bytes, no '/', '\\', NUL or other
control characters, not '.' or '..'), and a local path must still resolve inside the base
folder after symlinks are followed, so no key can leave its base. The local base itself lies
under the storage root (COMPLIANCE_STORAGE_ROOT) and every write descends to it from the root
without following a link out (storage_root.write_file). A location (the string that put_*
returns and get_file/exists accept) is an absolute path for the local store and
`s3://bucket/key` for S3; a location outside the store's base is refused.

`put_file` takes the file's SHA-256 when the caller already knows it (the exporters hash what
they write), so a stored file is not read again for it. The local store hard-links the file into
place when it lies on the same file system, else copies it (checking the given SHA-256 on the
way): the caller hands the file over and must not write to it afterwards (the exporters' and
the report builder's scratch files are never written again, only deleted). `local_file` gives
the path of a stored file to read in place (local store; None for S3), so publishing reads the
stored document, events file and exports without downloading copies.

S3 objects carry user metadata sha256, report-id, period, organization-id and run-id.
Every file written is recorded in the file index when the store has one; retention removes
files through `remove_recorded(entry)`, one recorded file at a time, never by listing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from compliance_reports.artifacts import storage_root
from compliance_reports.artifacts.checksums import sha256_file
from compliance_reports.artifacts.file_index import FileIndex, IndexedFile

LAYOUT = ("organization_id", "report_id", "period", "run_id", "filename")
_MAX_SEGMENT_BYTES = 255


class UnsafeKeyError(ValueError):
    """A key part or a location would leave the store's base."""


def check_segment(value: Any, what: str = "key part") -> str:
    if not isinstance(value, str) or value == "":
        raise UnsafeKeyError(f"{what} must be a non-empty string")
    if value in (".", ".."):
        raise UnsafeKeyError(f"{what} {value!r} is not allowed")
    if "/" in value or "\\" in value:
        raise UnsafeKeyError(f"{what} {value!r} must not contain '/' or '\\'")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in value):
        raise UnsafeKeyError(f"{what} {value!r} must not contain control characters")
    if len(value.encode("utf-8")) > _MAX_SEGMENT_BYTES:
        raise UnsafeKeyError(f"{what} is longer than {_MAX_SEGMENT_BYTES} bytes")
    return value


def check_key_parts(key_parts: Sequence[str]) -> tuple[str, ...]:
    parts = tuple(key_parts)
    if len(parts) != len(LAYOUT):
        raise UnsafeKeyError(
            f"a key has {len(LAYOUT)} parts ({'/'.join('{' + p + '}' for p in LAYOUT)}), not {len(parts)}"
        )
    return tuple(check_segment(value, name) for name, value in zip(LAYOUT, parts))


def run_key(organization_id: str, report_id: str, period: str, run_id: str, filename: str) -> tuple[str, ...]:
    return check_key_parts((organization_id, report_id, period, run_id, filename))




@dataclass(frozen=True)
class StoredObject:
    location: str
    filename: str
    size: int
    last_modified: datetime
    sha256: str | None = None


class ArtifactStore(ABC):
    """put_file / put_bytes / get_file / list_run / exists / remove_recorded."""

    index: FileIndex | None = None

    def _record(self, location: str, sha256: str, size: int) -> None:
        if self.index is not None:
            self.index.record(location, sha256, size)

    @abstractmethod
    def location_for(self, key_parts: Sequence[str]) -> str: ...

    @abstractmethod
    def put_file(self, key_parts: Sequence[str], local_path: Path, sha256: str | None = None) -> str: ...

    @abstractmethod
    def put_bytes(self, key_parts: Sequence[str], data: bytes) -> str: ...

    @abstractmethod
    def get_file(self, location: str, dest: Path) -> Path: ...

    @abstractmethod
    def exists(self, location: str) -> bool: ...

    @abstractmethod
    def list_run(self, organization_id: str, report_id: str, period: str, run_id: str) -> list[StoredObject]: ...

    @abstractmethod
    def remove_recorded(self, entry: IndexedFile) -> str:
        """Delete one recorded file if it still holds the recorded content.

        Returns "removed", "missing" or "changed" (kept); raises UnsafeKeyError for a location
        that is not this store's.
        """

    @abstractmethod
    def period_runs(self, organization_id: str, report_id: str, period: str, filename: str) -> list[tuple[str, datetime]]:
        """(run id, time stored) of every run of a period that holds `filename`, oldest first."""

    def local_file(self, location: str) -> Path | None:
        """The stored file itself, to read in place, when the store is a local folder."""
        return None

    def get_bytes(self, location: str) -> bytes:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            return self.get_file(location, Path(tmp) / "object").read_bytes()


# ---------------------------------------------------------------- local


class LocalArtifactStore(ArtifactStore):
    def __init__(self, base_dir: Path, root: Path | None = None, index: FileIndex | None = None) -> None:
        self.base = Path(base_dir).resolve()
        # Without a root (tests, tools) the store is confined to its own folder.
        self.root = Path(os.path.realpath(root)) if root is not None else self.base
        if not storage_root.is_inside(self.base, self.root):
            raise ValueError(
                f"artifact folder {self.base} (COMPLIANCE_ARTIFACT_DIR) is outside the storage root "
                f"{self.root} (COMPLIANCE_STORAGE_ROOT)"
            )
        self._base_parts = self.base.relative_to(self.root).parts
        self.index = index

    def _path(self, key_parts: Sequence[str]) -> Path:
        parts = check_key_parts(key_parts)
        path = self.base.joinpath(*parts)
        self._inside(path)
        return path

    def _inside(self, path: Path) -> Path:
        resolved = path.resolve()
        if resolved != self.base and not resolved.is_relative_to(self.base):
            raise UnsafeKeyError(f"{path} is outside the artifact store {self.base}")
        return resolved

    def _from_location(self, location: str) -> Path:
        path = Path(location)
        if not path.is_absolute():
            raise UnsafeKeyError(f"location {location!r} is not an absolute path of this store")
        try:
            relative = path.relative_to(self.base)
        except ValueError:
            raise UnsafeKeyError(f"location {location!r} is outside the artifact store {self.base}") from None
        return self._path(relative.parts)

    def location_for(self, key_parts: Sequence[str]) -> str:
        return str(self._path(key_parts))

    def _write(self, key_parts: Sequence[str], writer, sha256: str, size: int, link_from: Path | None = None) -> str:
        parts = check_key_parts(key_parts)
        where = dict(boundary_parts=len(self._base_parts), mode=0o644)
        try:
            linked = link_from is not None and storage_root.link_file(
                self.root, (*self._base_parts, *parts), link_from, **where
            )
            if not linked:
                storage_root.write_file(self.root, (*self._base_parts, *parts), writer, **where)
        except storage_root.OutsideRootError as exc:
            raise UnsafeKeyError(str(exc)) from None
        location = str(self.base.joinpath(*parts))
        self._record(location, sha256, size)
        return location

    def put_file(self, key_parts: Sequence[str], local_path: Path, sha256: str | None = None) -> str:
        local_path = Path(local_path)
        size = local_path.stat().st_size
        if sha256 is None:
            sha256 = sha256_file(local_path)
        return self._write(key_parts, storage_root.copy_writer(local_path, sha256), sha256, size,
                           link_from=local_path)

    def put_bytes(self, key_parts: Sequence[str], data: bytes) -> str:
        return self._write(key_parts, lambda out: out.write(data), hashlib.sha256(data).hexdigest(), len(data))

    def get_file(self, location: str, dest: Path) -> Path:
        src = self._from_location(location)
        if not src.is_file():
            raise FileNotFoundError(f"no stored artifact at {location}")
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        return dest

    def local_file(self, location: str) -> Path:
        src = self._from_location(location)
        if not src.is_file():
            raise FileNotFoundError(f"no stored artifact at {location}")
        return src

    def exists(self, location: str) -> bool:
        return self._from_location(location).is_file()

    def list_run(self, organization_id: str, report_id: str, period: str, run_id: str) -> list[StoredObject]:
        folder = self._path((organization_id, report_id, period, run_id, "x")).parent
        if not folder.is_dir():
            return []
        found = []
        for path in sorted(folder.iterdir()):
            if path.is_file() and not path.name.startswith("."):
                stat = path.stat()
                found.append(
                    StoredObject(str(path), path.name, stat.st_size,
                                 datetime.fromtimestamp(stat.st_mtime, timezone.utc), sha256_file(path))
                )
        return found

    def remove_recorded(self, entry: IndexedFile) -> str:
        path = Path(entry.location)
        try:
            relative = path.relative_to(self.base)
        except ValueError:
            raise UnsafeKeyError(f"location {entry.location!r} is outside the artifact store {self.base}") from None
        parts = check_key_parts(relative.parts)
        try:
            return storage_root.remove_file(
                self.root, (*self._base_parts, *parts), entry.sha256, stop_parts=len(self._base_parts)
            )
        except storage_root.OutsideRootError as exc:
            raise UnsafeKeyError(str(exc)) from None

    def period_runs(self, organization_id: str, report_id: str, period: str, filename: str) -> list[tuple[str, datetime]]:
        folder = self._path((organization_id, report_id, period, "x", filename)).parent.parent
        if not folder.is_dir():
            return []
        runs = []
        for run in folder.iterdir():
            target = run / filename
            if run.is_dir() and not run.is_symlink() and target.is_file():
                runs.append((run.name, datetime.fromtimestamp(target.stat().st_mtime, timezone.utc)))
        return sorted(runs, key=lambda item: (item[1], item[0]))


# ---------------------------------------------------------------- S3


class S3ArtifactStore(ArtifactStore):
    def __init__(self, bucket: str, prefix: str = "", client=None, index: FileIndex | None = None) -> None:
        if not bucket or "/" in bucket:
            raise ValueError(f"bucket {bucket!r} is not a bucket name")
        self.bucket = bucket
        segments = [s for s in prefix.strip("/").split("/") if s] if prefix else []
        self.prefix = "/".join(check_segment(s, "prefix part") for s in segments)
        if client is None:
            from compliance_reports.artifacts.s3 import make_s3_client

            client = make_s3_client()
        self.client = client
        self.index = index

    @classmethod
    def from_settings(
        cls, bucket: str, prefix: str = "", *, endpoint_url: str | None = None, region: str | None = None,
        access_key_id_env: str | None = None, secret_access_key_env: str | None = None,
    ) -> S3ArtifactStore:
        from compliance_reports.artifacts.s3 import make_s3_client

        return cls(bucket, prefix, make_s3_client(endpoint_url, region, access_key_id_env, secret_access_key_env))

    def _key(self, key_parts: Sequence[str]) -> str:
        parts = check_key_parts(key_parts)
        return "/".join(([self.prefix] if self.prefix else []) + list(parts))

    def _key_from_location(self, location: str) -> str:
        head = f"s3://{self.bucket}/"
        if not location.startswith(head):
            raise UnsafeKeyError(f"location {location!r} is not in bucket {self.bucket}")
        key = location[len(head):]
        rest = key
        if self.prefix:
            if not key.startswith(self.prefix + "/"):
                raise UnsafeKeyError(f"location {location!r} is outside the prefix {self.prefix}/")
            rest = key[len(self.prefix) + 1:]
        return self._key(rest.split("/"))

    def _location(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"

    def location_for(self, key_parts: Sequence[str]) -> str:
        return self._location(self._key(key_parts))

    @staticmethod
    def _metadata(parts: tuple[str, ...], sha256: str) -> dict[str, str]:
        org, report, period, run_id, _ = parts
        meta = {"sha256": sha256, "report-id": report, "period": period, "run-id": run_id,
                "organization-id": org}
        return {k: v for k, v in meta.items() if v.isascii()}  # S3 metadata is ASCII only

    def put_file(self, key_parts: Sequence[str], local_path: Path, sha256: str | None = None) -> str:
        parts = check_key_parts(key_parts)
        key = self._key(parts)
        sha256 = sha256 or sha256_file(Path(local_path))
        self.client.upload_file(
            str(local_path), self.bucket, key, ExtraArgs={"Metadata": self._metadata(parts, sha256)},
        )
        self._record(self._location(key), sha256, Path(local_path).stat().st_size)
        return self._location(key)

    def put_bytes(self, key_parts: Sequence[str], data: bytes) -> str:
        parts = check_key_parts(key_parts)
        key = self._key(parts)
        sha256 = hashlib.sha256(data).hexdigest()
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, Metadata=self._metadata(parts, sha256))
        self._record(self._location(key), sha256, len(data))
        return self._location(key)

    def get_file(self, location: str, dest: Path) -> Path:
        key = self._key_from_location(location)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.client.download_file(self.bucket, key, str(dest))
        except Exception as exc:  # botocore ClientError 404 -> FileNotFoundError
            if _is_not_found(exc):
                raise FileNotFoundError(f"no stored artifact at {location}") from None
            raise
        return dest

    def exists(self, location: str) -> bool:
        key = self._key_from_location(location)
        try:
            self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _is_not_found(exc):
                return False
            raise
        return True

    def presigned_url(self, location: str, expires_s: int) -> str:
        """A time-limited GET link to a stored object."""
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": self._key_from_location(location)},
            ExpiresIn=int(expires_s),
        )

    def head(self, location: str) -> dict[str, Any]:
        return self.client.head_object(Bucket=self.bucket, Key=self._key_from_location(location))

    def _iter_objects(self, prefix: str):
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            yield from page.get("Contents", [])

    def list_run(self, organization_id: str, report_id: str, period: str, run_id: str) -> list[StoredObject]:
        folder = self._key((organization_id, report_id, period, run_id, "x"))[:-1]
        found = []
        for obj in self._iter_objects(folder):
            name = obj["Key"][len(folder):]
            if "/" in name or not name:
                continue
            sha = self.client.head_object(Bucket=self.bucket, Key=obj["Key"]).get("Metadata", {}).get("sha256")
            found.append(StoredObject(self._location(obj["Key"]), name, obj["Size"], obj["LastModified"], sha))
        return sorted(found, key=lambda o: o.filename)

    def remove_recorded(self, entry: IndexedFile) -> str:
        key = self._key_from_location(entry.location)
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=key)
        except Exception as exc:
            if _is_not_found(exc):
                return "missing"
            raise
        if entry.sha256 is not None and head.get("Metadata", {}).get("sha256") != entry.sha256:
            return "changed"
        self.client.delete_object(Bucket=self.bucket, Key=key)
        return "removed"

    def period_runs(self, organization_id: str, report_id: str, period: str, filename: str) -> list[tuple[str, datetime]]:
        folder = self._key((organization_id, report_id, period, "x", filename))
        folder = folder[: -len("x/" + filename)]
        runs = []
        for obj in self._iter_objects(folder):
            run_id, _, name = obj["Key"][len(folder):].partition("/")
            if name == filename:
                runs.append((run_id, obj["LastModified"]))
        return sorted(runs, key=lambda item: (item[1], item[0]))


def open_store(
    index_engine,
    *,
    provider: str | None = None,
    base_dir: str | None = None,
    bucket: str | None = None,
    prefix: str | None = None,
    endpoint_url: str | None = None,
    region: str | None = None,
    access_key_id_env: str | None = None,
    secret_access_key_env: str | None = None,
) -> ArtifactStore:
    """The artifact store the arguments name, empty ones from the environment (settings.py);
    every file it writes is recorded in `index_engine`'s file index (retention deletes only
    recorded files)."""
    from compliance_reports.artifacts.file_index import ARTIFACT
    from compliance_reports.artifacts.s3 import make_s3_client
    from compliance_reports.settings import load_settings

    settings = load_settings()
    index = FileIndex(index_engine, ARTIFACT)
    provider = provider or settings.artifact_provider
    if provider == "s3":
        bucket = bucket or settings.artifact_bucket
        if not bucket:
            raise ValueError("artifact_store: provider s3 needs a bucket (COMPLIANCE_ARTIFACT_BUCKET)")
        client = make_s3_client(endpoint_url or settings.s3_endpoint_url, region,
                                access_key_id_env, secret_access_key_env)
        return S3ArtifactStore(bucket, settings.artifact_prefix if prefix is None else prefix, client, index=index)
    if provider != "local":
        raise ValueError(f"artifact_store: provider must be local or s3, not {provider!r}")
    return LocalArtifactStore(Path(base_dir) if base_dir else settings.artifacts_dir, settings.storage_root, index)


def _is_not_found(exc: Exception) -> bool:
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")
