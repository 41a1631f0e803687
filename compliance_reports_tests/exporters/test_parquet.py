"""Parquet export: typed schema, same rows, deterministic bytes."""

from __future__ import annotations

from datetime import datetime, timezone

import pyarrow as pa
import pyarrow.parquet as pq

from compliance_reports.exporters import parquet_exporter
from compliance_reports.exporters.parquet_exporter import write_document_parquet, write_events_parquet
from compliance_reports_tests.exporters.sample import EVENT_SCHEMA, sample_document, sample_events, write_events


def test_events_parquet_reads_back_typed(tmp_path):
    events = write_events(tmp_path / "e.parquet", n=40, row_group_size=6)
    out = tmp_path / "out.parquet"
    assert write_events_parquet(sample_document(), events, out) == 40
    table = pq.read_table(out)
    assert table.num_rows == 40
    assert table.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert table.schema.field("id").type == pa.int64()
    assert table.schema.remove_metadata() == EVENT_SCHEMA
    assert table.to_pylist() == sample_events(40)
    meta = table.schema.metadata
    assert meta[b"compliance_reports.report_id"] == b"hipaa-monthly"
    assert b"pandas" not in meta


def test_row_groups_do_not_depend_on_input_batching(tmp_path, monkeypatch):
    monkeypatch.setattr(parquet_exporter, "ROW_GROUP_ROWS", 16)
    doc = sample_document()
    a = write_events(tmp_path / "a.parquet", n=40, row_group_size=5)
    b = write_events(tmp_path / "b.parquet", n=40, row_group_size=40)
    write_events_parquet(doc, a, tmp_path / "a.out")
    write_events_parquet(doc, b, tmp_path / "b.out")
    assert pq.ParquetFile(tmp_path / "a.out").metadata.num_row_groups == 3
    assert (tmp_path / "a.out").read_bytes() == (tmp_path / "b.out").read_bytes()


def test_input_metadata_and_units_are_normalised(tmp_path):
    table = pa.table(
        {"id": pa.array([1, 2], pa.int64()),
         "timestamp": pa.array([1_764_231_302_123_456_789, 0], pa.timestamp("ns", tz="UTC")),
         "action": pa.array(["a", "b"]).dictionary_encode()},
    ).replace_schema_metadata({b"created_at": b"2026-01-01T00:00:00Z", b"pandas": b"{}"})
    pq.write_table(table, tmp_path / "in.parquet")
    write_events_parquet(sample_document(), tmp_path / "in.parquet", tmp_path / "out.parquet")
    out = pq.read_table(tmp_path / "out.parquet")
    assert out.schema.field("timestamp").type == pa.timestamp("us", tz="UTC")
    assert out.schema.field("action").type == pa.string()
    assert b"created_at" not in out.schema.metadata and b"pandas" not in out.schema.metadata
    assert out.column("timestamp")[0].as_py() == datetime(2025, 11, 27, 8, 15, 2, 123456, tzinfo=timezone.utc)


def test_document_parquet_long_form(tmp_path):
    out = tmp_path / "doc.parquet"
    n = write_document_parquet(sample_document(), out)
    table = pq.read_table(out)
    assert table.num_rows == n
    assert table.schema.field("row").type == pa.int32()
    rows = table.to_pylist()
    assert {"section_id": "summary", "section_kind": "summary", "section_title": "Summary", "row": 1,
            "key": "value", "label": "Value", "value": "48213"} in rows


def test_empty_events_file(tmp_path):
    pq.write_table(EVENT_SCHEMA.empty_table(), tmp_path / "empty.parquet")
    write_events_parquet(sample_document(), tmp_path / "empty.parquet", tmp_path / "out.parquet")
    table = pq.read_table(tmp_path / "out.parquet")
    assert table.num_rows == 0
    assert table.schema.remove_metadata() == EVENT_SCHEMA
