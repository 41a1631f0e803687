"""Publishing without copies: stored exports are hard links of the rendered files, the stored
document and events file are read in place, and each file is hashed once while it is exported."""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections import Counter
from pathlib import Path

import pytest

from compliance_reports.artifacts import checksums
from compliance_reports.artifacts.store import LocalArtifactStore
from compliance_reports.config.models import ReportConfig
from compliance_reports.exporters.publishing import export_and_store, fetch_publication
from compliance_reports_tests.exporters.sample import sample_document, write_events

FORMATS = ["csv", "json", "parquet", "xlsx"]
RUN = ("acme-health", "hipaa-monthly", "2026-11-01", "run-0001")


@pytest.fixture
def stored_run(tmp_path):
    store = LocalArtifactStore(tmp_path / "root" / "artifacts", tmp_path / "root")
    report = ReportConfig.model_validate({
        "id": "hipaa-monthly", "name": "HIPAA monthly", "organization_id": "acme-health",
        "report_type": "hipaa_audit_trail", "formats": FORMATS,
        "schedule": {"frequency": "monthly", "timezone": "Europe/Berlin"},
    })
    document = store.put_bytes((*RUN, "report.json"), json.dumps(sample_document()).encode())
    events = store.put_file((*RUN, "events.parquet"), write_events(tmp_path / "events.parquet", n=30))
    return store, report, document, events


@pytest.fixture
def hashed(monkeypatch) -> Counter:
    """How often each file name is read by sha256_file, wherever it was imported."""
    counts: Counter = Counter()
    original = checksums.sha256_file

    def counting(path, *args, **kwargs):
        counts[Path(path).name] += 1
        return original(path, *args, **kwargs)

    for module in list(sys.modules.values()):
        if getattr(module, "__name__", "").startswith("compliance_reports") and \
                getattr(module, "sha256_file", None) is original:
            monkeypatch.setattr(module, "sha256_file", counting)
    return counts


def test_stored_exports_are_hard_links_of_the_rendered_files(stored_run, tmp_path):
    store, report, document, events = stored_run
    published = export_and_store(store, report, "2026-11-01", "run-0001", document, events,
                                 tmp_path / "scratch", None)
    assert sorted(f.format for f in published.files) == sorted(FORMATS)
    for item in published.files:
        rendered, stored = tmp_path / "scratch" / "export" / item.filename, Path(item.location)
        assert os.stat(stored).st_ino == os.stat(rendered).st_ino and os.stat(stored).st_nlink == 2
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == item.sha256
    # the stored document and events file were read where they are, not downloaded
    assert list((tmp_path / "scratch" / "source").iterdir()) == []


def test_each_exported_file_is_hashed_once(stored_run, tmp_path, hashed):
    store, report, document, events = stored_run
    published = export_and_store(store, report, "2026-11-01", "run-0001", document, events,
                                 tmp_path / "scratch", None)
    assert {f.filename: hashed[f.filename] for f in published.files} == {f.filename: 1 for f in published.files}
    hashed.clear()
    publication = fetch_publication(store, published, report, tmp_path / "fetched")
    # fetching checks every file against the manifest: one more read each, no download
    assert {f.filename: hashed[f.filename] for f in publication.files} == {f.filename: 1 for f in publication.files}


def test_fetch_reads_a_local_store_in_place(stored_run, tmp_path):
    store, report, document, events = stored_run
    published = export_and_store(store, report, "2026-11-01", "run-0001", document, events,
                                 tmp_path / "scratch", None)
    publication = fetch_publication(store, published, report, tmp_path / "fetched")
    assert sorted(str(f.path) for f in publication.files) == sorted(f.location for f in published.files)
    assert str(publication.manifest_path) == published.manifest_location
    assert list((tmp_path / "fetched").iterdir()) == []
    assert publication.verify() == [] and publication.digest is not None
    # a stored file changed since the export is still found
    Path(published.files[0].location).write_bytes(b"changed")
    with pytest.raises(ValueError, match="do not match their manifest"):
        fetch_publication(store, published, report, tmp_path / "again")
