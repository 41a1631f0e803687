"""How a report and its publication read in the Dagster UI: typed metadata, figures first.

The UI lists metadata in insertion order, so the report's own figures (summary, event count,
integrity, coverage, the report type's numbers) come before the bookkeeping (window, hashes,
locations). Locations are path or URL values, so the UI offers to copy or open them.
"""

from __future__ import annotations

from typing import Any

from dagster import MetadataValue, TableColumn, TableRecord, TableSchema

from compliance_reports.exporters.publishing import PublishedSet
from compliance_reports.reports.run import StoredReport, markdown_summary, report_metadata

# Keys read back by the publish sensor (document_location, events_location, organization_id)
# stay plain: MetadataValue.path/url values read back as the same string through `.value`.
FIGURES_FIRST = ("event_count", "integrity_verdict", "coverage", "coverage_findings")

FILES_SCHEMA = TableSchema(
    columns=[
        TableColumn("file", "string", description="File name as delivered"),
        TableColumn("bytes", "int"),
        TableColumn("sha256", "string"),
        TableColumn("location", "string", description="Where the artifact store keeps it"),
    ]
)


def location_value(location: str) -> MetadataValue:
    """An artifact-store location as a clickable value: s3://... is a URL, a local one a path."""
    return MetadataValue.url(location) if "://" in location else MetadataValue.path(location)


def report_materialization_metadata(stored: StoredReport) -> dict[str, Any]:
    plain = report_metadata(stored)
    figures = {k: v for k, v in plain.items() if k.startswith("summary/")}
    metadata: dict[str, Any] = {
        "summary": MetadataValue.md(markdown_summary(stored)),
        # Dagster's own row-count key: plotted per partition and shown in the asset's overview.
        "dagster/row_count": MetadataValue.int(plain["event_count"]),
        **{k: plain[k] for k in FIGURES_FIRST},
        **figures,
    }
    for key, value in plain.items():
        if key in metadata or key in figures:
            continue
        metadata[key] = location_value(value) if key.endswith("_location") else value
    return metadata


def files_table(published: PublishedSet) -> MetadataValue:
    return MetadataValue.table(
        records=[
            TableRecord({"file": f.filename, "bytes": int(f.size), "sha256": f.sha256, "location": f.location})
            for f in published.files
        ],
        schema=FILES_SCHEMA,
    )


def publication_metadata(published: PublishedSet, report_run_id: str, publish_run_id: str) -> dict[str, Any]:
    return {
        "files": files_table(published),
        "file_count": len(published.files),
        "total_bytes": sum(int(f.size) for f in published.files),
        "manifest": location_value(published.manifest_location),
        "manifest_sha256": published.manifest_sha256,
        "report_run": MetadataValue.dagster_run(report_run_id),
        "publish_run": MetadataValue.dagster_run(publish_run_id),
        "reused_stored_files": published.reused,
    }
