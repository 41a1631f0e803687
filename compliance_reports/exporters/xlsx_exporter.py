"""XLSX export (Office Open XML workbook, written with openpyxl's streaming write-only mode).

Sheets, in this order:
- `Summary`: the header (report, period as a reader names it and its key, timezone, window,
  generation, run id, event count and digest, criteria), the headline figures of
  document["summary"] (with their change against the previous period when the document
  carries `change` / `change_pct`), and the findings counted by severity.
- one sheet per section with tabular content, in document order: tables (their columns),
  findings (severity, code, title, detail, evidence event ids) and facts (label, value).
  Sheet names come from the section titles: at most 31 characters, none of `[]:*?/\\`, unique
  (a repeated name gets " (2)", " (3)"...). A capped table ends with a note row.
- `Events` (when the report includes events and has an events file): one row per event, the
  events file's columns in its order, typed: integers and decimals as numbers, booleans as
  booleans, timestamps as Excel date-times in UTC (`yyyy-mm-dd hh:mm:ss.000`, the header says
  UTC), JSON columns as compact JSON text. The header row is frozen and carries an auto filter.
  An Excel sheet holds 1,048,576 rows: a period with more events stops one row short and the
  last row is a note pointing to the CSV or Parquet export, which hold every event.

Every header row is frozen. Cells follow the CSV rules where they apply: text that starts with
`=`, `+`, `-`, `@`, a tab or CR is guarded with a leading `'` (csv_exporter.neutralise, undone
by csv_exporter.unguard), so no cell is ever a formula; typed numbers, booleans and dates are
never changed. Characters XML cannot hold (control characters other than tab, LF and CR)
become U+FFFD, and text longer than Excel's 32,767-character cell limit is cut with a marker
(the CSV and JSON exports hold it whole). A carriage return inside a text reads back as a line
feed (XML normalises line ends). ISO 8601 UTC texts in document tables
(`2026-11-27T09:15:02.123Z`) become date-times too; local times with an offset stay text.

Memory: the events file is read batch by batch (`events.open_events`, as for CSV) and openpyxl
streams each row to a temporary file, so memory stays flat whatever the number of events.

Determinism: the same document and events file give the same bytes. openpyxl stamps
docProps/core.xml with the time of saving and the zip entries with the local clock; both are
replaced: the document properties carry the document's `generated_at` (so the workbook says
when the report was made) and every zip entry the fixed date 1980-01-01 00:00.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import zipfile
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.packaging.core import DocumentProperties
from openpyxl.styles import Font
from openpyxl.utils import get_column_letter
from openpyxl.xml.functions import tostring

from compliance_reports.exporters.csv_exporter import neutralise
from compliance_reports.exporters.events import (
    EventColumn,
    event_batches,
    event_columns,
    format_array,
    open_events,
)
from compliance_reports.reports.digest import period_label, severity_counts

EXCEL_MAX_ROWS = 1_048_576
EXCEL_MAX_CELL_CHARS = 32_767
SHEET_NAME_MAX = 31
BATCH_ROWS = 16_384
DATETIME_FORMAT = "yyyy-mm-dd hh:mm:ss.000"
DATE_FORMAT = "yyyy-mm-dd"
CUT_MARKER = " [cut at Excel's cell limit; the CSV and JSON exports hold the whole value]"
# Reproducible zip entries (the convention of reproducible builds: the earliest zip date).
ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_CORE_XML = "docProps/core.xml"
_SHEET_NAME_FORBIDDEN = re.compile(r"[\[\]:*?/\\]")
_ISO_UTC = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z")
# Integers beyond this lose digits as Excel numbers (IEEE doubles): they are written as text.
_EXACT_INT = 2**53
_BOLD = Font(bold=True)

_HEADER_ROWS = (
    ("Report", "report_name"),
    ("Report id", "report_id"),
    ("Report type", "report_type"),
    ("Organization", "organization_id"),
    ("Frequency", "frequency"),
    ("Period", None),  # the human label, filled in below
    ("Period key", "period"),
    ("Timezone", "timezone"),
    ("Window start (local)", "window_start_local"),
    ("Window end (local)", "window_end_local"),
    ("Window start (UTC)", "window_start_utc"),
    ("Window end (UTC)", "window_end_utc"),
    ("Window hours", "window_hours"),
    ("Window note", "window_note"),
    ("Generated at (UTC)", "generated_at"),
    ("Generator", "generator_version"),
    ("Run id", "run_id"),
    ("Events", "event_count"),
    ("Events sha256", "events_sha256"),
    ("Criteria", "criteria"),
)


# ---------------------------------------------------------------- cell values


def text_cell(value: str) -> str:
    """A text value as written: formula-guarded, XML-safe, within the cell limit."""
    value = ILLEGAL_CHARACTERS_RE.sub("\ufffd", value)
    if len(value) > EXCEL_MAX_CELL_CHARS:
        value = value[: EXCEL_MAX_CELL_CHARS - len(CUT_MARKER)] + CUT_MARKER
    return neutralise(value)


def _utc_naive(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(timezone.utc).replace(tzinfo=None)


def document_value(value: Any) -> Any:
    """A document scalar as a typed cell value (see the module doc)."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value if abs(value) < _EXACT_INT else str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, str):
        if _ISO_UTC.fullmatch(value):
            return _utc_naive(value)
        return text_cell(value)
    return text_cell(json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True))


def _styled(ws, value: Any, *, bold: bool = False) -> Any:
    """A cell with a number format for dates (Excel shows bare serial numbers otherwise)."""
    if not bold and not isinstance(value, datetime):
        return value
    cell = WriteOnlyCell(ws, value=value)
    if isinstance(value, datetime):
        cell.number_format = DATETIME_FORMAT
    if bold:
        cell.font = _BOLD
    return cell


def _row(ws, values: Iterable[Any], *, bold: bool = False) -> list[Any]:
    return [_styled(ws, v, bold=bold) for v in values]


# ---------------------------------------------------------------- sheet names


def _shorten(text: str, limit: int) -> str:
    """At most `limit` characters, cut after a whole word where one fits, without a dangling
    "(" part or trailing punctuation ("ePHI access by principal (top 10)" -> "ePHI access by
    principal")."""
    if len(text) <= limit:
        return text
    cut = text[:limit]
    boundary = max(cut.rfind(" "), cut.rfind("-"))
    if boundary >= limit // 2:
        cut = cut[:boundary]
    if cut.count("(") > cut.count(")"):
        cut = cut[: cut.rfind("(")]
    return cut.rstrip(" -,;(") or text[:limit]


def sheet_name(title: str, taken: set[str]) -> str:
    """A valid, unique sheet name from a section title (see the module doc); adds it to `taken`
    (compared case-insensitively, as Excel does)."""
    base = _SHEET_NAME_FORBIDDEN.sub(" ", title or "").strip().strip("'").strip()
    base = " ".join(base.split()) or "Section"
    if base.lower() == "history":  # reserved by Excel
        base = "History (section)"
    name = _shorten(base, SHEET_NAME_MAX)
    number = 2
    while name.lower() in taken:
        suffix = f" ({number})"
        name = _shorten(base, SHEET_NAME_MAX - len(suffix)) + suffix
        number += 1
    taken.add(name.lower())
    return name


# ---------------------------------------------------------------- summary


def _write_summary(ws, document: dict[str, Any]) -> None:
    header = document.get("header") or {}
    ws.column_dimensions["A"].width = 34
    ws.column_dimensions["B"].width = 60
    ws.column_dimensions["C"].width = 14
    ws.column_dimensions["D"].width = 14
    ws.append(_row(ws, ["Field", "Value"], bold=True))
    human = period_label(str(header.get("period") or ""), header.get("frequency"))
    for label, key in _HEADER_ROWS:
        value = human if key is None else header.get(key)
        ws.append(_row(ws, [label, document_value(value)]))
    summary = document.get("summary") or []
    if summary:
        with_change = any("change" in item or "change_pct" in item for item in summary)
        ws.append([])
        ws.append(_row(ws, ["Headline figures", "Value", *(["Change", "Change (%)"] if with_change else [])],
                       bold=True))
        for item in summary:
            values = [item.get("label"), item.get("value")]
            if with_change:
                values += [item.get("change"), item.get("change_pct")]
            ws.append(_row(ws, [document_value(v) for v in values]))
    ws.append([])
    ws.append(_row(ws, ["Findings by severity", "Findings"], bold=True))
    for severity, count in severity_counts(document).items():
        ws.append([severity, count])
    ws.freeze_panes = "A2"


# ---------------------------------------------------------------- sections


def _section_table(section: dict[str, Any]) -> tuple[list[str], list[list[Any]]] | None:
    kind = section.get("kind")
    if kind == "table":
        columns = section.get("columns") or []
        titles = [c.get("title") or c["key"] for c in columns]
        rows = [[row.get(c["key"]) for c in columns] for row in section.get("rows") or []]
        return titles, rows
    if kind == "findings":
        titles = ["Severity", "Code", "Title", "Detail", "Evidence event ids"]
        rows = [
            [f.get("severity"), f.get("code"), f.get("title"), f.get("detail"),
             " ".join(str(v) for v in f.get("evidence_event_ids") or [])]
            for f in section.get("findings") or []
        ]
        return titles, rows
    if kind == "facts":
        return ["Label", "Value"], [[f.get("label"), f.get("value")] for f in section.get("facts") or []]
    return None  # attestation and text sections hold no table (PDF, JSON and XML carry them)


def _write_table(ws, titles: list[str], rows: list[list[Any]], note: str | None) -> None:
    for index, title in enumerate(titles, start=1):
        ws.column_dimensions[get_column_letter(index)].width = max(12, min(60, len(str(title)) + 4))
    ws.freeze_panes = "A2"
    ws.append(_row(ws, [document_value(t) for t in titles], bold=True))
    for row in rows:
        ws.append(_row(ws, [document_value(v) for v in row]))
    if rows:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(titles))}{len(rows) + 1}"
    if note:
        ws.append([])
        ws.append([text_cell(note)])


def _table_note(section: dict[str, Any]) -> str | None:
    notes = []
    total = section.get("total_rows")
    shown = len(section.get("rows") or [])
    if section.get("kind") == "table" and isinstance(total, int) and total > shown:
        notes.append(f"Showing {shown:,} of {total:,} rows.")
    if section.get("note"):
        notes.append(str(section["note"]))
    return " ".join(notes) or None


# ---------------------------------------------------------------- events


def _column_values(arr: pa.Array, column: EventColumn) -> list[Any]:
    """One batch column as typed Python values for openpyxl (see the module doc)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    kind = column.kind
    if kind == "timestamp":
        if arr.type.tz is not None:
            arr = arr.cast(pa.timestamp("ms", tz="UTC"), safe=False)
        # Without a zone the stored value is taken as UTC (events.py); dropping the zone keeps
        # the UTC wall-clock time, which is what the sheet shows.
        return arr.cast(pa.timestamp("ms"), safe=False).to_pylist()
    if kind in ("integer", "number"):
        return [document_value(v) if isinstance(v, (int, float)) else v for v in arr.to_pylist()]
    if kind in ("boolean", "date"):
        return arr.to_pylist()
    return [None if v is None else text_cell(v) for v in format_array(arr, column).to_pylist()]


def _column_width(column: EventColumn) -> float:
    if column.kind == "timestamp":
        return 24
    if column.kind == "json":
        return 60
    if column.kind in ("integer", "number", "boolean", "date"):
        return 12
    return 22


def _where_all_events(formats: list[str]) -> str:
    kept = [name for fmt, name in (("csv", "CSV"), ("parquet", "Parquet")) if fmt in formats]
    if kept:
        return f"every event is in this report's {' and '.join(kept)} export"
    return "add csv or parquet to the report's formats to export every event"


def _write_events(ws, events_path: Path, max_rows: int, formats: list[str], batch_rows: int) -> int:
    """Stream the events into `ws`; returns the number of event rows written."""
    pf = open_events(events_path)
    columns = event_columns(pf.schema_arrow)
    total = pf.metadata.num_rows
    room = total if total + 1 <= max_rows else max_rows - 2  # header, events[, note]
    for index, column in enumerate(columns, start=1):
        ws.column_dimensions[get_column_letter(index)].width = _column_width(column)
    ws.freeze_panes = "A2"
    names = [f"{c.name} (UTC)" if c.kind == "timestamp" else c.name for c in columns]
    ws.append(_row(ws, [text_cell(n) for n in names], bold=True))
    stamp = [c.kind == "timestamp" for c in columns]
    dates = [c.kind == "date" for c in columns]
    written = 0
    pool = pa.default_memory_pool()
    for batch in event_batches(pf, batch_rows):
        if written >= room:
            break
        if batch.num_rows > room - written:
            batch = batch.slice(0, room - written)
        values = [_column_values(batch.column(i), c) for i, c in enumerate(columns)]
        for row in zip(*values):
            ws.append([_event_cell(ws, v, s, d) for v, s, d in zip(row, stamp, dates)])
        written += batch.num_rows
        del batch, values
        pool.release_unused()
    if written:
        ws.auto_filter.ref = f"A1:{get_column_letter(len(columns))}{written + 1}"
    if written < total:
        ws.append([text_cell(
            f"The sheet stops here: the period has {total:,} events and an Excel sheet holds "
            f"{max_rows:,} rows, so only the first {written:,} are listed; {_where_all_events(formats)}."
        )])
    return written


def _event_cell(ws, value: Any, is_stamp: bool, is_date: bool) -> Any:
    if value is None or not (is_stamp or is_date):
        return value
    cell = WriteOnlyCell(ws, value=value)
    cell.number_format = DATETIME_FORMAT if is_stamp else DATE_FORMAT
    return cell


# ---------------------------------------------------------------- workbook


def _document_time(header: dict[str, Any]) -> datetime:
    for key in ("generated_at", "window_end_utc"):
        value = header.get(key)
        if isinstance(value, str):
            try:
                return _utc_naive(value).replace(microsecond=0)
            except ValueError:
                continue
    return datetime(1980, 1, 1)


def _core_properties(header: dict[str, Any]) -> bytes:
    when = _document_time(header)
    props = DocumentProperties(
        creator="compliance_reports", title=str(header.get("report_name") or "")[:255] or None,
        created=when, modified=when,
    )
    return tostring(props.to_tree())


def _reproducible_zip(source: Path, target: Path, core_xml: bytes) -> None:
    """Copy the workbook entry by entry with fixed dates and the fixed document properties."""
    with zipfile.ZipFile(source) as zin, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zout:
        for entry in zin.infolist():
            info = zipfile.ZipInfo(entry.filename, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            if entry.filename == _CORE_XML:
                zout.writestr(info, core_xml)
                continue
            with zin.open(entry) as src, zout.open(info, "w", force_zip64=entry.file_size > 2**31) as dst:
                shutil.copyfileobj(src, dst, 1 << 20)


def write_xlsx(
    document: dict[str, Any],
    events_path: Path | None,
    out_path: Path,
    include_events: bool = True,
    *,
    formats: list[str] | None = None,
    max_rows: int = EXCEL_MAX_ROWS,
    batch_rows: int = BATCH_ROWS,
) -> Path:
    """Write the workbook described in the module doc to `out_path`.

    `formats` are the report's other formats (named in the row-limit note); `max_rows` is the
    sheet's row limit (Excel's by default; tests use a small one).
    """
    if max_rows < 3:
        raise ValueError("max_rows must be at least 3 (header, one event, the note)")
    out_path = Path(out_path)
    header = document.get("header") or {}
    wb = Workbook(write_only=True)
    taken: set[str] = set()
    _write_summary(wb.create_sheet(sheet_name("Summary", taken)), document)
    sections = [(s, _section_table(s)) for s in document.get("sections") or []]
    events_name = "Events" if include_events and events_path is not None else None
    if events_name:
        taken.add(events_name.lower())  # the event listing keeps its plain name
    for section, table in sections:
        if table is not None:
            ws = wb.create_sheet(sheet_name(str(section.get("title") or section.get("id") or ""), taken))
            _write_table(ws, *table, _table_note(section))
    if events_name:
        _write_events(wb.create_sheet(events_name), Path(events_path), max_rows, formats or [], batch_rows)
    staging = out_path.with_name(f".{out_path.name}.openpyxl")
    try:
        wb.save(staging)
        _reproducible_zip(staging, out_path, _core_properties(header))
    finally:
        if staging.exists():
            os.remove(staging)
    return out_path
