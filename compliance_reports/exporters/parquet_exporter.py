"""Parquet export with deterministic bytes.

With event rows: the events file rewritten with a typed schema (the source file's columns and
types; every timestamp column as timestamp[us, tz=UTC]; dictionary columns decoded), in
row groups of exactly ROW_GROUP_ROWS rows whatever the input's batching, zstd level 3,
dictionary encoding, statistics, no page index, format version 2.6. The schema metadata of
the input (pandas index info, writer timestamps, anything else) is dropped and replaced by a
fixed set of keys from the document header (report id, organization, period, schema version,
events sha256), so nothing time-dependent is embedded. pyarrow's `created_by` footer string
names only the library version, which is constant for a given installation.

Without event rows: the document's tabular content in long form (the columns of
`common.FLAT_COLUMNS`; `row` int32, everything else string), like the CSV.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from compliance_reports.exporters.common import FLAT_COLUMNS, iter_flat_cells, scalar_text
from compliance_reports.exporters.events import event_batches, open_events

ROW_GROUP_ROWS = 65_536
WRITER_OPTIONS: dict[str, Any] = {
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": True,
    "write_statistics": True,
    "version": "2.6",
    "data_page_version": "1.0",
    "write_page_index": False,
    "store_schema": True,
}
_METADATA_FIELDS = ("report_id", "organization_id", "period", "run_id", "events_sha256")


def _metadata(document: dict[str, Any]) -> dict[bytes, bytes]:
    header = document.get("header") or {}
    meta = {b"compliance_reports.schema_version": str(document.get("schema_version", "")).encode()}
    for name in _METADATA_FIELDS:
        value = header.get(name)
        if value is not None:
            meta[f"compliance_reports.{name}".encode()] = str(value).encode("utf-8")
    return meta


def _target_type(dtype: pa.DataType) -> pa.DataType:
    if pa.types.is_dictionary(dtype):
        return _target_type(dtype.value_type)
    if pa.types.is_timestamp(dtype):
        return pa.timestamp("us", tz="UTC")
    return dtype


def events_schema(source: pa.Schema, document: dict[str, Any]) -> pa.Schema:
    fields = [pa.field(f.name, _target_type(f.type), nullable=f.nullable) for f in source]
    return pa.schema(fields, metadata=_metadata(document))


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    arrays = []
    for i, field in enumerate(schema):
        arr = batch.column(i)
        if pa.types.is_dictionary(arr.type):
            arr = arr.dictionary_decode()
        if arr.type != field.type:
            # Timestamps: a zone-less timestamp is read as UTC; finer units are truncated.
            arr = arr.cast(field.type, safe=False)
        arrays.append(arr)
    return pa.RecordBatch.from_arrays(arrays, schema=schema)


def write_events_parquet(document: dict[str, Any], events_path: Path, out_path: Path) -> int:
    pf = open_events(events_path)
    schema = events_schema(pf.schema_arrow, document)
    rows = 0
    pending: list[pa.RecordBatch] = []
    pending_rows = 0
    pool = pa.default_memory_pool()
    with pq.ParquetWriter(out_path, schema, **WRITER_OPTIONS) as writer:
        for batch in event_batches(pf, 16_384):
            batch = _conform(batch, schema)
            pending.append(batch)
            pending_rows += batch.num_rows
            while pending_rows >= ROW_GROUP_ROWS:
                table = pa.Table.from_batches(pending, schema=schema)
                writer.write_table(table.slice(0, ROW_GROUP_ROWS), row_group_size=ROW_GROUP_ROWS)
                rest = table.slice(ROW_GROUP_ROWS)
                pending = rest.to_batches()
                pending_rows = rest.num_rows
                rows += ROW_GROUP_ROWS
                del table, rest
                pool.release_unused()
        if pending_rows or rows == 0:
            table = pa.Table.from_batches(pending, schema=schema)
            writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
            rows += pending_rows
    return rows


FLAT_SCHEMA = pa.schema(
    [pa.field(name, pa.int32() if name == "row" else pa.string()) for name in FLAT_COLUMNS]
)


def write_document_parquet(document: dict[str, Any], out_path: Path) -> int:
    columns: dict[str, list] = {name: [] for name in FLAT_COLUMNS}
    for cell in iter_flat_cells(document):
        for name, value in zip(FLAT_COLUMNS, cell):
            columns[name].append(value if name == "row" else scalar_text(value))
    schema = FLAT_SCHEMA.with_metadata(_metadata(document))
    table = pa.table([pa.array(columns[n], schema.field(n).type) for n in FLAT_COLUMNS], schema=schema)
    pq.write_table(table, out_path, row_group_size=ROW_GROUP_ROWS, **WRITER_OPTIONS)
    return table.num_rows


def write_parquet(
    document: dict[str, Any], events_path: Path | None, out_path: Path, include_events: bool = True
) -> Path:
    if include_events and events_path is not None:
        write_events_parquet(document, events_path, out_path)
    else:
        write_document_parquet(document, out_path)
    return out_path
