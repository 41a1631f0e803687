"""Where a run's files are kept: a local folder or an S3-compatible bucket/prefix.

One layout for both:

    {organization_id}/{report_id}/{period}/{run_id}/{filename}

Key parts are validated one by one (non-empty, at most 255 bytes, no '/', '\\', NUL or other
control characters, not '.' or '..'), and a local path must still resolve inside the base
folder after symlinks are followed, so no key can leave its base. A location (the string that
put_* returns and get_file/exists accept) is an absolute path for the local store and
`s3://bucket/key` for S3; a location outside the store's base is refused.

S3 objects carry user metadata sha256, report-id, period, organization-id and run-id.
`delete_older_than(cutoff)` removes objects whose modification time (local mtime, S3
LastModified) is before `cutoff` and returns their locations.
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
from compliance_reports.artifacts.checksums import sha256_file

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


def _aware(cutoff: datetime) -> datetime:
    if cutoff.tzinfo is None:
        raise ValueError("cutoff must be timezone-aware")
    return cutoff.astimezone(timezone.utc)


class ArtifactStore(ABC):
    """put_file / put_bytes / get_file / list_run / delete_older_than / exists."""

    @abstractmethod
    def location_for(self, key_parts: Sequence[str]) -> str: ...

    @abstractmethod
    def put_file(self, key_parts: Sequence[str], local_path: Path) -> str: ...

    @abstractmethod
    def put_bytes(self, key_parts: Sequence[str], data: bytes) -> str: ...

    @abstractmethod
    def get_file(self, location: str, dest: Path) -> Path: ...

    @abstractmethod
    def exists(self, location: str) -> bool: ...

    @abstractmethod
    def list_run(self, organization_id: str, report_id: str, period: str, run_id: str) -> list[StoredObject]: ...

    @abstractmethod
    def delete_older_than(self, cutoff: datetime) -> list[str]: ...

    @abstractmethod
    def period_runs(self, organization_id: str, report_id: str, period: str, filename: str) -> list[tuple[str, datetime]]:
        """(run id, time stored) of every run of a period that holds `filename`, oldest first."""

    def get_bytes(self, location: str) -> bytes:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            return self.get_file(location, Path(tmp) / "object").read_bytes()


# ---------------------------------------------------------------- local


class LocalArtifactStore(ArtifactStore):
    def __init__(self, base_dir: Path) -> None:
        self.base = Path(base_dir).resolve()

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

    def _write(self, key_parts: Sequence[str], writer) -> str:
        path = self._path(key_parts)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._inside(path.parent)  # a symlinked folder created meanwhile must not lead out
        tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
        try:
            writer(tmp)
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        return str(path)

    def put_file(self, key_parts: Sequence[str], local_path: Path) -> str:
        return self._write(key_parts, lambda tmp: shutil.copyfile(local_path, tmp))

    def put_bytes(self, key_parts: Sequence[str], data: bytes) -> str:
        return self._write(key_parts, lambda tmp: tmp.write_bytes(data))

    def get_file(self, location: str, dest: Path) -> Path:
        src = self._from_location(location)
        if not src.is_file():
            raise FileNotFoundError(f"no stored artifact at {location}")
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
        return dest

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

    def delete_older_than(self, cutoff: datetime) -> list[str]:
        limit = _aware(cutoff).timestamp()
        deleted = []
        if not self.base.is_dir():
            return deleted
        for root, dirs, files in os.walk(self.base, topdown=False, followlinks=False):
            for name in sorted(files):
                path = Path(root) / name
                if path.is_symlink() or name.startswith("."):
                    continue
                if path.stat().st_mtime < limit:
                    path.unlink()
                    deleted.append(str(path))
            if Path(root) != self.base:
                try:
                    os.rmdir(root)  # only succeeds when now empty
                except OSError:
                    pass
        return sorted(deleted)


# ---------------------------------------------------------------- S3


class S3ArtifactStore(ArtifactStore):
    def __init__(self, bucket: str, prefix: str = "", client=None) -> None:
        if not bucket or "/" in bucket:
            raise ValueError(f"bucket {bucket!r} is not a bucket name")
        self.bucket = bucket
        segments = [s for s in prefix.strip("/").split("/") if s] if prefix else []
        self.prefix = "/".join(check_segment(s, "prefix part") for s in segments)
        if client is None:
            from compliance_reports.artifacts.s3 import make_s3_client

            client = make_s3_client()
        self.client = client

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

    def put_file(self, key_parts: Sequence[str], local_path: Path) -> str:
        parts = check_key_parts(key_parts)
        key = self._key(parts)
        self.client.upload_file(
            str(local_path), self.bucket, key,
            ExtraArgs={"Metadata": self._metadata(parts, sha256_file(Path(local_path)))},
        )
        return self._location(key)

    def put_bytes(self, key_parts: Sequence[str], data: bytes) -> str:
        parts = check_key_parts(key_parts)
        key = self._key(parts)
        self.client.put_object(
            Bucket=self.bucket, Key=key, Body=data,
            Metadata=self._metadata(parts, hashlib.sha256(data).hexdigest()),
        )
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

    def period_runs(self, organization_id: str, report_id: str, period: str, filename: str) -> list[tuple[str, datetime]]:
        folder = self._key((organization_id, report_id, period, "x", filename))
        folder = folder[: -len("x/" + filename)]
        runs = []
        for obj in self._iter_objects(folder):
            run_id, _, name = obj["Key"][len(folder):].partition("/")
            if name == filename:
                runs.append((run_id, obj["LastModified"]))
        return sorted(runs, key=lambda item: (item[1], item[0]))

    def delete_older_than(self, cutoff: datetime) -> list[str]:
        limit = _aware(cutoff)
        scope = self.prefix + "/" if self.prefix else ""
        old = [obj["Key"] for obj in self._iter_objects(scope) if obj["LastModified"] < limit]
        for start in range(0, len(old), 1000):
            batch = old[start:start + 1000]
            response = self.client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True}
            )
            errors = response.get("Errors") or []
            if errors:
                raise RuntimeError(f"S3 refused to delete {len(errors)} object(s): {errors[0]}")
        return sorted(self._location(k) for k in old)


def store_from_settings(settings=None) -> ArtifactStore:
    """The artifact store the environment names (COMPLIANCE_ARTIFACT_*), for plain-Python callers."""
    from compliance_reports.settings import load_settings

    settings = settings or load_settings()
    if settings.artifact_provider == "s3":
        if not settings.artifact_bucket:
            raise ValueError("COMPLIANCE_ARTIFACT_PROVIDER is s3 but COMPLIANCE_ARTIFACT_BUCKET is not set")
        return S3ArtifactStore.from_settings(
            settings.artifact_bucket, settings.artifact_prefix, endpoint_url=settings.s3_endpoint_url
        )
    if settings.artifact_provider != "local":
        raise ValueError(f"COMPLIANCE_ARTIFACT_PROVIDER must be local or s3, not {settings.artifact_provider!r}")
    return LocalArtifactStore(settings.artifacts_dir)


def _is_not_found(exc: Exception) -> bool:
    response = getattr(exc, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound")
