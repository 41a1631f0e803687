"""Publishing a stored report: export it once, store the files with a signed manifest, and
load the stored set back for delivery and re-delivery (never regenerating).

The manifest covers the whole stored set of the run folder: the exported files (delivered) and
the document and event rows they were rendered from (kept in the store, never delivered).

Re-issues: when the period was delivered before with other content (the ledger's latest issue
has another content fingerprint), the exported document carries a `reissue_of` block and a
"Re-issued" section naming the run and manifest sha256 it supersedes (reports/document.py).

`resume_publish` is the plain-Python publish of a stored report run (CLI `publish retry`):
the stored set is reused when its manifest exists, otherwise rendered once from the stored
document; then every destination gets what it has not yet received.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from compliance_reports.artifacts.checksums import sha256_file
from compliance_reports.artifacts.manifest import MANIFEST_NAME, StoredSetChanged, source_entry, write_manifest
from compliance_reports.artifacts.public_links import DEFAULT_LINK_EXPIRY_S
from compliance_reports.artifacts.publication import Publication
from compliance_reports.artifacts.store import S3ArtifactStore
from compliance_reports.config.models import ReportConfig
from compliance_reports.delivery.ledger_queries import latest_issue
from compliance_reports.exporters.render import export_all
from compliance_reports.reports.document import content_fingerprint, with_reissue
from compliance_reports.reports.run import DOCUMENT_FILENAME, EVENTS_FILENAME
from compliance_reports.reports.digest import ReportDigest, digest_document


@dataclass(frozen=True)
class StoredFile:
    filename: str
    location: str
    size: int
    sha256: str
    media_type: str
    format: str


@dataclass(frozen=True)
class PublishedSet:
    """The stored export of one report run: files plus manifest, all in one folder."""

    report_id: str
    organization_id: str
    period: str
    report_run_id: str
    manifest_location: str
    manifest_sha256: str
    files: list[StoredFile]
    reused: bool  # True when a previous publish attempt had already stored this set

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "PublishedSet":
        return cls(**{**data, "files": [StoredFile(**f) for f in data["files"]]})




def _parts(report: ReportConfig, period: str, report_run_id: str) -> tuple[str, str, str, str]:
    return (report.organization_id, report.id, period, report_run_id)


def export_and_store(
    store,
    report: ReportConfig,
    period: str,
    report_run_id: str,
    document_location: str,
    events_location: str | None,
    scratch: Path,
    manifest_key: bytes | None,
    ledger_engine=None,
) -> PublishedSet:
    """Render every configured format once and store files and manifest next to the document.

    If the manifest of this report run is already stored (a retried publish), the stored set
    is returned as it is: files are never rendered twice for one materialization. With
    `ledger_engine`, a document whose content differs from the period's latest issue is
    marked as a re-issue.
    """
    parts = _parts(report, period, report_run_id)
    manifest_location = store.location_for((*parts, MANIFEST_NAME))
    if store.exists(manifest_location):
        return load_published_set(store, report, period, report_run_id, scratch, reused=True)

    source = scratch / "source"
    source.mkdir(parents=True, exist_ok=True)
    document_path = _readable(store, document_location, source / "report.json")
    document = json.loads(Path(document_path).read_bytes())
    if ledger_engine is not None:
        document = mark_reissue(ledger_engine, report.id, period, document)
    events_path = None
    if events_location:
        events_path = _readable(store, events_location, source / "events.parquet")
    out_dir = scratch / "export"
    exported = export_all(
        document,
        events_path,
        list(report.formats),
        report.export,
        out_dir,
        pdf_event_limit=report.options.pdf_event_limit,
        pdf_table_row_limit=report.options.pdf_table_row_limit,
    )
    sources = [_source(store, parts, document_location, document_path, "document")]
    if events_path is not None:
        sources.append(_source(store, parts, events_location, events_path, "events"))
    manifest_path = write_manifest(
        out_dir, document, exported, sources=sources, key=manifest_key, key_env=None
    )
    files = []
    for item in exported:
        location = store.put_file((*parts, item.filename), item.path, item.sha256)
        files.append(StoredFile(item.filename, location, item.size, item.sha256, item.media_type, item.format))
    # The manifest goes last: its presence marks a complete stored set.
    stored_manifest = store.put_file((*parts, MANIFEST_NAME), manifest_path)
    return _published_set(report, period, report_run_id, stored_manifest, manifest_path, files, reused=False)


def _readable(store, location: str, download_to: Path) -> Path:
    """A stored file to read: in place in a local store, else downloaded to `download_to`."""
    return store.local_file(location) or Path(store.get_file(location, download_to))


def _source(store, parts: tuple[str, ...], location: str, local: Path, role: str) -> dict[str, Any]:
    """The manifest entry of a stored source; it must sit in the run folder next to the manifest."""
    name = location.rstrip("/").rsplit("/", 1)[-1]
    if store.location_for((*parts, name)) != location:
        raise ValueError(f"the report {role} at {location} is not in the run folder {'/'.join(parts)}")
    return source_entry(Path(local), role, filename=name)


def mark_reissue(engine, report_id: str, period: str, document: dict[str, Any]) -> dict[str, Any]:
    """`document`, marked as re-issued when the period's latest issue had other content."""
    issue = latest_issue(engine, report_id, period)
    if issue is None or issue["content_fingerprint"] == content_fingerprint(document):
        return document
    return with_reissue(document, issue["run_id"], issue["artifact_sha256"], issue["content_fingerprint"])


def load_published_set(
    store, report: ReportConfig, period: str, report_run_id: str, scratch: Path, reused: bool = True
) -> PublishedSet:
    parts = _parts(report, period, report_run_id)
    folder = scratch / "stored"
    folder.mkdir(parents=True, exist_ok=True)
    manifest_location = store.location_for((*parts, MANIFEST_NAME))
    manifest_path = _readable(store, manifest_location, folder / MANIFEST_NAME)
    manifest = json.loads(manifest_path.read_bytes())
    files = [
        StoredFile(
            filename=entry["filename"],
            location=store.location_for((*parts, entry["filename"])),
            size=int(entry["size"]),
            sha256=entry["sha256"],
            media_type=entry.get("media_type") or "",
            format=entry.get("format") or "",
        )
        for entry in manifest["files"]
    ]
    return _published_set(report, period, report_run_id, manifest_location, manifest_path, files, reused)


def _published_set(
    report: ReportConfig, period: str, report_run_id: str, manifest_location: str,
    manifest_path: Path, files: list[StoredFile], reused: bool,
) -> PublishedSet:
    return PublishedSet(
        report_id=report.id,
        organization_id=report.organization_id,
        period=period,
        report_run_id=report_run_id,
        manifest_location=manifest_location,
        manifest_sha256=sha256_file(manifest_path),
        files=files,
        reused=reused,
    )


def _stored_digest(store, published: PublishedSet, report: ReportConfig, manifest_path: Path,
                   folder: Path) -> ReportDigest | None:
    """The digest of the report document the files were rendered from (None for a manifest
    that lists no document); the document must still match its manifest entry."""
    manifest = json.loads(manifest_path.read_bytes())
    entry = next((e for e in manifest.get("sources") or [] if e.get("role") == "document"), None)
    if entry is None:
        return None
    parts = _parts(report, published.period, published.report_run_id)
    location = store.location_for((*parts, entry["filename"]))
    stored = store.local_file(location)
    local = stored or Path(store.get_file(location, folder / ".document.json"))
    try:
        data = local.read_bytes()  # read once: the bytes checked are the bytes used
        if hashlib.sha256(data).hexdigest() != entry["sha256"]:
            raise StoredSetChanged("stored files do not match their manifest: the report document changed")
        return digest_document(json.loads(data))
    finally:
        if stored is None:
            local.unlink()


def _artifact_links(store, published: PublishedSet):
    """Links to the stored files when the artifact store can make them for anyone: presigned
    URLs of an S3 store. A local artifact store also holds the sources, so it is not published;
    a storage destination's copy provides local links (see delivery.dispatcher)."""
    if not isinstance(store, S3ArtifactStore):
        return None
    locations = {f.filename: f.location for f in published.files}

    def link_for(filename: str) -> str:
        return store.presigned_url(locations[filename], DEFAULT_LINK_EXPIRY_S)

    return link_for


def fetch_publication(
    store, published: PublishedSet, report: ReportConfig, folder: Path, *, verify: bool = True
) -> Publication:
    """Describe the stored set for the delivery channels: a local store's run folder as it is
    (its files are read in place, never copied), else the set downloaded into `folder`.

    With verify=False a changed file is left for the caller to find (`Publication.verify`).
    """
    folder.mkdir(parents=True, exist_ok=True)
    manifest_path = store.local_file(published.manifest_location)
    if manifest_path is None:
        for item in published.files:
            store.get_file(item.location, folder / item.filename)
        manifest_path = Path(store.get_file(published.manifest_location, folder / MANIFEST_NAME))
    digest = _stored_digest(store, published, report, manifest_path, folder)
    publication = Publication.from_manifest(
        manifest_path,
        report_id=report.id,
        organization_id=report.organization_id,
        report_name=report.name,
        report_type=report.report_type,
        period=published.period,
        run_id=published.report_run_id,
        artifact_location=published.manifest_location,
        link_for=_artifact_links(store, published),
        digest=digest,
    )
    problems = publication.verify() if verify else []
    if problems:
        raise StoredSetChanged("stored files do not match their manifest: " + "; ".join(problems))
    return publication


def stored_publication_loader(engine, store, scratch: Path):
    """`load_publication(report_id, period, artifact_sha256)` for the retry sweep and redelivery.

    Finds the stored set a ledger row points at (its report run) and downloads it; the caller
    checks the manifest sha256 and the files (a mismatch is never sent).
    """
    from compliance_reports.config import store as config_store
    from compliance_reports.delivery.ledger_queries import list_rows

    cache: dict[tuple[str, str, str], Publication] = {}

    def load(report_id: str, period: str, artifact_sha256: str) -> Publication:
        key = (report_id, period, artifact_sha256)
        if key not in cache:
            row = next((r for r in list_rows(engine, report_id=report_id, period=period)
                        if r["artifact_sha256"] == artifact_sha256), None)
            if row is None:
                raise LookupError(f"no ledger row names the stored set {artifact_sha256}")
            report = config_store.get_report(engine, report_id)
            run_id = row["run_id"] or Path(row["artifact_location"] or "").parent.name
            folder = scratch / f"stored-{len(cache)}"
            published = load_published_set(store, report, period, run_id, folder / "manifest")
            cache[key] = fetch_publication(store, published, report, folder / "files", verify=False)
        return cache[key]

    return load


def latest_stored_run(store, report: ReportConfig, period: str) -> str | None:
    """The newest report run of a period whose document is stored, or None."""
    runs = store.period_runs(report.organization_id, report.id, period, DOCUMENT_FILENAME)
    return runs[-1][0] if runs else None


def resume_publish(
    engine,
    store,
    report: ReportConfig,
    period: str,
    destinations,
    scratch: Path,
    *,
    manifest_key: bytes | None,
    run_id: str | None = None,
    alert_destinations=(),
    log=None,
):
    """Export (or reuse) and deliver a stored report run; returns (PublishedSet, outcomes).

    The run defaults to the newest stored one of the period. LookupError when none is stored.
    """
    from compliance_reports.delivery.dispatcher import deliver_publication

    run_id = run_id or latest_stored_run(store, report, period)
    if run_id is None:
        raise LookupError(f"no stored report run of {report.id} for period {period}; run the report first")
    parts = (report.organization_id, report.id, period, run_id)
    document_location = store.location_for((*parts, DOCUMENT_FILENAME))
    if not store.exists(document_location):
        raise LookupError(f"report run {run_id} of {report.id} {period} has no stored document")
    events_location = store.location_for((*parts, EVENTS_FILENAME))
    published = export_and_store(
        store, report, period, run_id, document_location,
        events_location if store.exists(events_location) else None,
        scratch / "export", manifest_key, ledger_engine=engine,
    )
    publication = fetch_publication(store, published, report, scratch / "files")
    outcomes = deliver_publication(engine, publication, destinations, log=log,
                                   alert_destinations=alert_destinations)
    return published, outcomes
