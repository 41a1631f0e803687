"""What delivery sends: a report's stored, exported files and their manifest.

A `Publication` points at files already written by the exporters (never regenerated here).
The manifest's SHA-256 names exactly one set of file contents (the manifest lists every file
with its own SHA-256); the ledger keys deliveries on the document's content fingerprint
(`fingerprint`), which stays the same when a period is re-run over unchanged audit rows.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping
from compliance_reports.artifacts.checksums import sha256_file
from compliance_reports.reports.digest import ReportDigest

# Media types by file name ending (longest ending first wins).
MEDIA_TYPES: dict[str, str] = {
    ".pdf": "application/pdf",
    ".csv": "text/csv",
    ".json": "application/json",
    ".xml": "application/xml",
    ".parquet": "application/vnd.apache.parquet",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".gz": "application/gzip",
    ".gzip": "application/gzip",
    ".zip": "application/zip",
    ".enc": "application/octet-stream",
}
FORMAT_NAMES = {"pdf", "csv", "json", "xml", "parquet", "xlsx"}


def media_type_for(filename: str) -> str:
    """The MIME type of an exported file from its name (the outermost ending decides)."""
    suffix = Path(filename).suffix.lower()
    return MEDIA_TYPES.get(suffix, "application/octet-stream")


def format_for(filename: str) -> str:
    """The export format named in a file name: `report.csv.gz.enc` -> `csv`."""
    for suffix in Path(filename).suffixes:
        name = suffix.lstrip(".").lower()
        if name in FORMAT_NAMES:
            return name
    return (Path(filename).suffix.lstrip(".") or "bin").lower()


def _manifest_entries(data: Any) -> list[dict[str, Any]]:
    """The file entries of a manifest: a list, `files`, or the first list of {filename,...}."""
    if isinstance(data, list):
        return data
    if isinstance(data, dict):
        if isinstance(data.get("files"), list):
            return data["files"]
        for value in data.values():
            if isinstance(value, list) and value and all(isinstance(v, dict) and "filename" in v for v in value):
                return value
    raise ValueError("manifest lists no files (expected a list or a 'files' list of {filename, size, sha256})")




@dataclass(frozen=True)
class PublishedFile:
    filename: str
    path: Path
    size: int
    sha256: str
    media_type: str = ""
    format: str = ""

    def __post_init__(self) -> None:
        if "/" in self.filename or "\\" in self.filename or self.filename in ("", ".", ".."):
            raise ValueError(f"file name {self.filename!r} must be a plain name")
        object.__setattr__(self, "path", Path(self.path))
        if not self.media_type:
            object.__setattr__(self, "media_type", media_type_for(self.filename))
        if not self.format:
            object.__setattr__(self, "format", format_for(self.filename))

    @classmethod
    def coerce(cls, value: "PublishedFile | Mapping[str, Any]") -> "PublishedFile":
        if isinstance(value, PublishedFile):
            return value
        known = {k: value[k] for k in ("filename", "path", "size", "sha256", "media_type", "format") if k in value}
        return cls(**known)


@dataclass(frozen=True)
class Publication:
    """One report period's exported files, as stored by the artifact store.

    `link_for(filename)` returns a link to a stored file (a presigned S3 URL or a public URL,
    see artifacts.public_links) or None when none can be made; email uses it for files too
    large to attach, webhooks for files too big to inline. `digest` holds the aggregates of
    the report document (reports.digest) that a mail may show; None when the stored set has
    no document.
    """

    report_id: str
    organization_id: str
    report_name: str
    report_type: str
    period: str
    run_id: str | None
    files: list[PublishedFile]
    manifest_path: Path
    manifest_sha256: str
    artifact_location: str
    link_for: Callable[[str], str | None] | None = field(default=None, compare=False, repr=False)
    digest: ReportDigest | None = field(default=None, compare=False, repr=False)
    content_fingerprint: str | None = None
    reissue_of: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "files", [PublishedFile.coerce(f) for f in self.files])
        object.__setattr__(self, "manifest_path", Path(self.manifest_path))

    @property
    def artifact_sha256(self) -> str:
        """The ledger's artifact hash: the manifest's SHA-256."""
        return self.manifest_sha256

    @property
    def fingerprint(self) -> str:
        """The ledger's content identity; a manifest without a fingerprint falls back to its hash."""
        return self.content_fingerprint or self.manifest_sha256

    def with_links(self, link_for: Callable[[str], str | None] | None) -> "Publication":
        return replace(self, link_for=link_for)

    def manifest(self) -> Any:
        return json.loads(self.manifest_path.read_text(encoding="utf-8"))

    def verify(self) -> list[str]:
        """Problems with the stored files (missing, changed); empty when all match."""
        problems = []
        paths: Iterable[tuple[str, Path, str]] = [
            (f.filename, f.path, f.sha256) for f in self.files
        ]
        for name, path, expected in [("manifest", self.manifest_path, self.manifest_sha256), *paths]:
            if not path.is_file():
                problems.append(f"stored file {name} is missing")
            elif sha256_file(path) != expected:
                problems.append(f"stored file {name} does not match its recorded sha256")
        return problems

    @classmethod
    def from_manifest(
        cls,
        manifest_path: str | Path,
        *,
        report_id: str | None = None,
        organization_id: str | None = None,
        report_name: str | None = None,
        report_type: str = "",
        period: str | None = None,
        run_id: str | None = None,
        artifact_location: str | None = None,
        link_for: Callable[[str], str | None] | None = None,
        digest: ReportDigest | None = None,
    ) -> "Publication":
        """Build from a stored manifest.json whose files sit next to it.

        The manifest is a list of entries or an object with a `files` list; each entry has at
        least filename, size and sha256 (format and media_type are derived when absent).
        report_id, organization_id, period and run_id default to the manifest's own fields
        (compliance_reports.artifacts.manifest writes them); report_name defaults to the report id.
        """
        manifest_path = Path(manifest_path)
        raw = manifest_path.read_bytes()
        data = json.loads(raw)
        entries = _manifest_entries(data)
        files = [
            PublishedFile(
                filename=e["filename"],
                path=manifest_path.parent / e["filename"],
                size=int(e["size"]),
                sha256=e["sha256"],
                media_type=e.get("media_type") or "",
                format=e.get("format") or "",
            )
            for e in entries
        ]
        header = data if isinstance(data, dict) else {}
        report_id = report_id or header.get("report_id")
        organization_id = organization_id or header.get("organization_id")
        period = period or header.get("period")
        missing = [n for n, v in (("report_id", report_id), ("organization_id", organization_id),
                                  ("period", period)) if not v]
        if missing:
            raise ValueError(f"{manifest_path}: {', '.join(missing)} not given and not in the manifest")
        return cls(
            report_id=report_id,
            organization_id=organization_id,
            report_name=report_name or report_id,
            report_type=report_type,
            period=period,
            run_id=run_id or header.get("run_id"),
            files=files,
            manifest_path=manifest_path,
            manifest_sha256=hashlib.sha256(raw).hexdigest(),
            artifact_location=artifact_location or str(manifest_path.parent),
            link_for=link_for,
            content_fingerprint=header.get("content_fingerprint"),
            reissue_of=header.get("reissue_of"),
            digest=digest,
        )
