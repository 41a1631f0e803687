"""Which long tables the PDF shortens, and which files of the same publication hold every row.

The PDF is a document to read. A table of thousands of rows (the complete accounting of
disclosures of a large month is about 1 % of its events) makes it hundreds of pages long, and
laying such a table out is nearly all of WeasyPrint's time and memory. So a table section
longer than `options.pdf_table_row_limit` rows shows its first rows, then the line
"N of M rows shown; the complete table is in <files> of this publication", but only when
another file of the same publication holds every row of that table. When none of the
configured formats does but the PDF is not alone (`[pdf, csv, parquet]` with event rows: the CSV
and Parquet hold the events), the publication also carries the JSON document, which holds every
table, and the PDF names it (`companion_formats`): laying out 10,000 disclosure rows took
WeasyPrint minutes and gigabytes. A PDF-only publication stays self-contained: its PDF lists
every row. Either way no row of the evidence is left out of what is delivered.

What each format holds of a table section (every row of the document's table):
- json: the whole document; xml: every section with all its rows;
- xlsx: one sheet per table section, while the rows fit an Excel sheet;
- csv and parquet: the document's tables in long form only when the report carries no event
  rows (`export.include_events` false, or no events file); otherwise they hold the events.
The event listing (at most `options.pdf_event_limit` events in the PDF, a separate limit) is
held by csv, parquet and xml, and by xlsx while the events fit one sheet; json holds no events.

Only table sections are shortened; the tables inside rolled-up findings and facts stay whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from compliance_reports.artifacts import compression as compression_mod
from compliance_reports.artifacts import file_crypto
from compliance_reports.config.models import ReportOptions
from compliance_reports.exporters.common import content_filename

DEFAULT_TABLE_ROW_LIMIT: int = ReportOptions.model_fields["pdf_table_row_limit"].default
# An Excel sheet's rows, header included (xlsx_exporter.EXCEL_MAX_ROWS; not imported from there
# so that the PDF process does not load openpyxl).
EXCEL_MAX_ROWS = 1_048_576
_DOCUMENT_CARRIERS = ("json", "xml")
_EVENT_CARRIERS = ("csv", "parquet", "xml")


def published_names(header: Mapping[str, Any], formats: Iterable[str], compression: str = "none",
                    encrypted: bool = False) -> dict[str, str]:
    """Format -> the name of its file in the publication (as `render.export_all` names it)."""
    suffix = compression_mod.EXTENSIONS.get(compression, "") + (file_crypto.SUFFIX if encrypted else "")
    return {fmt: content_filename(dict(header), fmt) + suffix for fmt in formats}


def table_carriers(rows: int, formats: Iterable[str], event_rows: bool) -> list[str]:
    """The formats, other than pdf, whose file holds every one of a table section's `rows` rows;
    `event_rows`: the publication's CSV and Parquet hold the events, not the document's tables."""
    carriers = []
    for fmt in formats:
        if (fmt in _DOCUMENT_CARRIERS
                or (fmt == "xlsx" and rows + 1 <= EXCEL_MAX_ROWS)
                or (fmt in ("csv", "parquet") and not event_rows)):
            carriers.append(fmt)
    return carriers


def event_carriers(total: int, formats: Iterable[str]) -> list[str]:
    """The formats whose file holds every one of the `total` events (when event rows are
    included in the publication)."""
    return [fmt for fmt in formats
            if fmt in _EVENT_CARRIERS or (fmt == "xlsx" and total + 1 <= EXCEL_MAX_ROWS)]


def companion_formats(document: Mapping[str, Any], limit: int, formats: Iterable[str],
                      event_rows: bool) -> list[str]:
    """The formats to add to a publication so that its PDF can shorten every long table: the
    JSON document when a table section is longer than `limit` rows and none of `formats` but
    the PDF holds it whole. Nothing for a PDF-only publication, which lists every row."""
    formats = list(formats)
    if "pdf" not in formats or len(formats) == 1 or "json" in formats:
        return []
    if any(not table_carriers(rows, formats, event_rows) for _, rows in _long_tables(document, limit)):
        return ["json"]
    return []


def _long_tables(document: Mapping[str, Any], limit: int) -> Iterator[tuple[Mapping[str, Any], int]]:
    """(section, rows) of each table section longer than `limit` rows."""
    for section in document.get("sections") or []:
        rows = len(section.get("rows") or []) if section.get("kind") == "table" else 0
        if rows > limit:
            yield section, rows


def join_names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def shown_note(shown: int, total: int, files: list[str]) -> str:
    return (f"{shown:,} of {total:,} rows shown; the complete table is in {join_names(files)} "
            "of this publication.")


def table_caps(document: Mapping[str, Any], limit: int, formats: Iterable[str], event_rows: bool,
               names: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """Section id -> {"shown", "total", "files", "note"} for every table section the PDF
    shortens: longer than `limit` rows and held whole by another file of the publication
    (`names`: format -> file name)."""
    if limit < 0:
        raise ValueError("pdf_table_row_limit must be 0 or more")
    formats = list(formats)
    caps = {}
    for section, rows in _long_tables(document, limit):
        carriers = table_carriers(rows, formats, event_rows)
        if carriers:
            files = [names[fmt] for fmt in carriers]
            caps[section["id"]] = {"shown": limit, "total": rows, "files": files,
                                   "note": shown_note(limit, rows, files)}
    return caps


def pdf_table_rows(document: Mapping[str, Any], caps: Mapping[str, Mapping[str, Any]]) -> int:
    """The table rows, findings and facts the PDF lays out, after `caps`."""
    total = 0
    for section in document.get("sections") or []:
        rows = len(section.get("rows") or section.get("findings") or section.get("facts") or [])
        cap = caps.get(section.get("id"))
        total += cap["shown"] if cap else rows
    return total
