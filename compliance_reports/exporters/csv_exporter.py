"""CSV export.

Format: RFC 4180 as Python's csv module writes it with QUOTE_MINIMAL and lineterminator
"\r\n": comma separator, a field quoted only when it holds a comma, a double quote, CR or LF,
embedded quotes doubled, CRLF line ends, UTF-8 without a byte-order mark, one header row.

The header row and the document-table CSV go through csv.writer itself. Event rows, which can
number millions, are encoded column-wise with Arrow compute kernels (quote test, quote
doubling, joining with commas and CRLF) straight from ParquetFile.iter_batches, so no cell
becomes a Python object; the output is byte for byte what csv.writer would write for the same
values (a property test compares the two on arbitrary text), at roughly the speed of
PostgreSQL's own COPY ... CSV (benchmarks/export.py).

Content:
- With event rows (`include_events` true and an events file): one row per event, columns in
  the events file's order under their column names; values as described in
  `exporters.events` (timestamps `2026-11-27T09:15:02.123Z`, details as compact JSON, nulls
  as empty cells).
- Without event rows: the document's tabular content in long form, one row per cell, columns
  section_id, section_kind, section_title, row, key, label, value (see
  `common.iter_flat_cells`: the summary, facts, tables and findings).

Formula guard (CSV injection): a text cell that starts with `=`, `+`, `-`, `@`, a tab or a
carriage return is written with a single quote `'` in front, so spreadsheet programs show it
as text instead of evaluating it (`=cmd|' /C calc'!A0` becomes `'=cmd|' /C calc'!A0`). This
applies to every text value, header names included; numbers, booleans and timestamps that
come from typed columns are never changed (a negative number stays `-5`). So that the guard
can be undone without ambiguity, a text that already starts with quotes followed by one of
those characters gets one more quote (`'=x` becomes `''=x`). To recover the original text,
remove one leading `'` from every cell that matches `^'+[=+\-@\t\r]` (see `unguard`).
"""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from compliance_reports.exporters.common import FLAT_COLUMNS, iter_flat_cells, scalar_text
from compliance_reports.exporters.events import (
    EventColumn,
    event_batches,
    event_columns,
    format_array,
    open_events,
)

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_RE = r"^('*[=+\-@\t\r])"
_GUARDED = re.compile(r"^'+[=+\-@\t\r]")
_NEEDS_QUOTES = r'[",\r\n]'
_QUOTE = '"'
_CRLF = "\r\n"
# Measured over 1M events: 4,096-row batches peak ~50 MB lower than 16,384 (188 against 237 MB
# for the exporter alone), in the same time.
BATCH_ROWS = 4_096
# Column kinds whose text never holds a comma, quote or line break.
_NEVER_QUOTED = frozenset({"integer", "number", "boolean", "timestamp", "date"})


def neutralise(value: str | None) -> str | None:
    """`'` + value when the value (after any leading quotes) starts with a formula character."""
    if value and value.lstrip("'")[:1] in FORMULA_PREFIXES:
        return "'" + value
    return value


def unguard(cell: str) -> str:
    """The original text of a guarded cell (the inverse of `neutralise`)."""
    return cell[1:] if _GUARDED.match(cell) else cell


def _writer(fh):
    return csv.writer(fh, dialect="excel", quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")


def _encode_column(arr: pa.Array, single_column: bool) -> pa.Array:
    """CSV text of each cell, as csv.writer(QUOTE_MINIMAL) writes it; never null."""
    needs = pc.match_substring_regex(arr, _NEEDS_QUOTES)
    if pc.any(needs).as_py():
        quoted = pc.binary_join_element_wise(_QUOTE, pc.replace_substring(arr, '"', '""'), _QUOTE, "")
        arr = pc.if_else(pc.fill_null(needs, False), quoted, arr)
    if single_column:  # the csv module quotes a record that is one empty field
        arr = pc.if_else(pc.fill_null(pc.equal(arr, ""), True), '""', arr)
    return pc.fill_null(arr, "")


def _cell_column(raw: pa.Array, column: EventColumn, single_column: bool) -> pa.Array:
    """One column of a batch as CSV cell text: formatted, formula-guarded, quoted; never null."""
    arr = format_array(raw, column)
    if column.kind == "string":
        arr = pc.replace_substring_regex(arr, pattern=_FORMULA_RE, replacement=r"'\1")
    if column.kind in _NEVER_QUOTED and not single_column:
        return pc.fill_null(arr, "")
    return _encode_column(arr, single_column)


def _records(cells: list[pa.Array]) -> pa.Buffer:
    """The CSV records of a batch: cells joined by commas, CRLF after each record."""
    lines = pc.binary_join_element_wise(*cells, ",") if len(cells) > 1 else cells[0]
    lines = pc.binary_join_element_wise(lines, _CRLF, "")
    offsets = memoryview(lines.buffers()[1]).cast("i")
    start, end = offsets[lines.offset], offsets[lines.offset + len(lines)]
    return lines.buffers()[2].slice(start, end - start)


def _encode_batch(batch: pa.RecordBatch, columns: list[EventColumn]) -> list[pa.Buffer]:
    """CSV bytes of one batch.

    Equivalent to csv.writer(quoting=QUOTE_MINIMAL, lineterminator="\\r\\n").writerows over
    the same values (a property test checks this against the csv module), without turning
    every cell into a Python object, which is what keeps the exporter close to COPY speed.
    """
    if batch.nbytes * 3 > _MAX_BATCH_BYTES and batch.num_rows > 1:  # 32-bit string offsets
        half = batch.num_rows // 2
        return _encode_batch(batch.slice(0, half), columns) + _encode_batch(batch.slice(half), columns)
    single = len(columns) == 1
    return [_records([_cell_column(batch.column(i), c, single) for i, c in enumerate(columns)])]


def write_events_csv(events_path: Path, out_path: Path, batch_rows: int = BATCH_ROWS) -> int:
    """Stream the events file into a CSV at out_path; returns the number of data rows.

    Batches of `batch_rows` rows are read with ParquetFile.iter_batches and written one at a
    time; after each batch Arrow's allocator returns freed memory, so memory stays flat
    whatever the number of events.
    """
    pf = open_events(events_path)
    columns = event_columns(pf.schema_arrow)
    pool = pa.default_memory_pool()
    rows = 0
    with open(out_path, "wb") as fh:
        header = io.StringIO(newline="")
        _writer(header).writerow([neutralise(c.name) for c in columns])
        fh.write(header.getvalue().encode("utf-8"))
        for batch in event_batches(pf, batch_rows):
            if batch.num_rows:
                for buf in _encode_batch(batch, columns):
                    fh.write(buf)
                rows += batch.num_rows
            del batch
            pool.release_unused()
    return rows


_MAX_BATCH_BYTES = 1 << 30


def _cell(value: Any) -> str | None:
    text = scalar_text(value)
    return neutralise(text) if isinstance(value, str) else text


def write_document_csv(document: dict[str, Any], out_path: Path) -> int:
    """The document's tables in long form (see the module docstring); returns data rows."""
    rows = 0
    with open(out_path, "w", encoding="utf-8", newline="") as fh:
        writer = _writer(fh)
        writer.writerow(FLAT_COLUMNS)
        for cell in iter_flat_cells(document):
            writer.writerow([_cell(v) if i != 3 else v for i, v in enumerate(cell)])
            rows += 1
    return rows


def write_csv(document: dict[str, Any], events_path: Path | None, out_path: Path, include_events: bool = True) -> Path:
    if include_events and events_path is not None:
        write_events_csv(events_path, out_path)
    else:
        write_document_csv(document, out_path)
    return out_path
