from __future__ import annotations

import hashlib
import json

import pytest

from compliance_reports.artifacts.publication import (
    Publication,
    PublishedFile,
    format_for,
    media_type_for,
)


@pytest.mark.parametrize("name,media,fmt", [
    ("r.pdf", "application/pdf", "pdf"), ("r.csv", "text/csv", "csv"), ("r.json", "application/json", "json"),
    ("r.xml", "application/xml", "xml"), ("r.parquet", "application/vnd.apache.parquet", "parquet"),
    ("r.csv.gz", "application/gzip", "csv"), ("r.zip", "application/zip", "zip"),
    ("r.csv.gz.enc", "application/octet-stream", "csv"), ("r.bin", "application/octet-stream", "bin"),
])
def test_media_types_and_formats(name, media, fmt):
    assert media_type_for(name) == media and format_for(name) == fmt


def test_from_manifest_and_dict_files(tmp_path):
    (tmp_path / "r.csv").write_bytes(b"a,b\n")
    sha = hashlib.sha256(b"a,b\n").hexdigest()
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"files": [{"filename": "r.csv", "format": "csv", "size": 4, "sha256": sha}]}))
    pub = Publication.from_manifest(manifest, report_id="r", organization_id="o", report_name="R",
                                    report_type="custom", period="2026-11-01", run_id="x")
    assert pub.artifact_sha256 == hashlib.sha256(manifest.read_bytes()).hexdigest()
    assert pub.files == [PublishedFile("r.csv", tmp_path / "r.csv", 4, sha, "text/csv", "csv")]
    assert pub.verify() == []
    same = Publication(**{**pub.__dict__, "files": [{"filename": "r.csv", "path": str(tmp_path / "r.csv"),
                                                      "size": 4, "sha256": sha}]})
    assert same.files == pub.files
    (tmp_path / "r.csv").write_bytes(b"changed")
    assert pub.verify() == ["stored file r.csv does not match its recorded sha256"]
    with pytest.raises(ValueError):
        PublishedFile("../x.csv", tmp_path / "x", 1, sha)


def test_from_manifest_reads_identity_from_the_manifest(tmp_path):
    (tmp_path / "r.pdf").write_bytes(b"%PDF-1.7")
    sha = hashlib.sha256(b"%PDF-1.7").hexdigest()
    (tmp_path / "manifest.json").write_text(json.dumps({
        "manifest_version": 1, "report_id": "gdpr", "organization_id": "org-9", "period": "2026-10-01",
        "run_id": "abc", "files": [{"filename": "r.pdf", "format": "pdf", "media_type": "application/pdf",
                                    "size": 8, "sha256": sha, "compressed": None}]}))
    pub = Publication.from_manifest(tmp_path / "manifest.json", report_name="GDPR", report_type="gdpr_processing_activities")
    assert (pub.report_id, pub.organization_id, pub.period, pub.run_id) == ("gdpr", "org-9", "2026-10-01", "abc")
    with pytest.raises(ValueError, match="organization_id"):
        (tmp_path / "m2.json").write_text(json.dumps({"files": []}))
        Publication.from_manifest(tmp_path / "m2.json", report_id="x", period="2026-10-01")
