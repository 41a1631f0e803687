"""What every exporter shares: the exported-file record, file names, hashing, and the
document's tabular content flattened to one long table (used by CSV and Parquet when a report
carries no event rows).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

FORMAT_EXTENSIONS = {
    "pdf": "pdf", "csv": "csv", "json": "json", "xml": "xml", "parquet": "parquet", "xlsx": "xlsx",
}
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
FORMAT_MEDIA_TYPES = {
    "pdf": "application/pdf",
    "csv": "text/csv",
    "json": "application/json",
    "xml": "application/xml",
    "parquet": "application/vnd.apache.parquet",
    "xlsx": XLSX_MEDIA_TYPE,
}
ENCRYPTED_MEDIA_TYPE = "application/octet-stream"

# A name segment that is safe as a file name and a storage key part.
_SAFE_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass(frozen=True)
class ExportedFile:
    """One file produced by export_all, as stored and delivered.

    `size` and `sha256` describe the file as written (after compression and encryption);
    `content_sha256` is the SHA-256 of the rendered content before compression and
    encryption, which is the part that is byte-identical across runs.
    """

    format: str
    path: Path
    filename: str
    media_type: str
    size: int
    sha256: str
    compressed: str  # none | gzip | zip
    encrypted: bool
    key_id: str | None
    content_sha256: str | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["path"] = str(self.path)
        return data


def base_name(header: dict[str, Any]) -> str:
    """`{report_id}_{period}`, refusing anything that is not a plain file-name segment."""
    report_id = str(header.get("report_id") or "")
    period = str(header.get("period") or "")
    for label, value in (("report_id", report_id), ("period", period)):
        if not _SAFE_NAME_RE.fullmatch(value) or ".." in value or len(value) > 128:
            raise ValueError(
                f"header.{label} {value!r} cannot be used in a file name "
                "(letters, digits, '.', '_' and '-' only)"
            )
    return f"{report_id}_{period}"


def content_filename(header: dict[str, Any], fmt: str) -> str:
    return f"{base_name(header)}.{FORMAT_EXTENSIONS[fmt]}"




def scalar_text(value: Any) -> str | None:
    """Text of a document scalar for CSV/Parquet cells: None stays None (an empty cell),
    booleans are true/false, numbers as JSON writes them, nested values as compact JSON."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)):
        return json.dumps(value)
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


# Long layout of the document's tabular content: one row per cell.
FLAT_COLUMNS = ("section_id", "section_kind", "section_title", "row", "key", "label", "value")

_FINDING_COLUMNS = (
    ("severity", "Severity"),
    ("code", "Code"),
    ("title", "Title"),
    ("detail", "Detail"),
    ("evidence_event_ids", "Evidence event ids"),
)


def iter_flat_cells(document: dict[str, Any]) -> Iterator[tuple[str, str, str, int, str, str, Any]]:
    """Every tabular value of the document as (section_id, section_kind, section_title, row,
    key, label, value), row counted from 1:

    - the summary as section "summary" (kind "summary") and each facts section: one row per
      item with the cells `label` and `value`;
    - table sections: one row per table row, one cell per column (key, column title);
    - findings: one row per finding with severity, code, title, detail and the evidence
      event ids joined by spaces;
    - attestation, text and chart sections hold no table and are left out (they are in the
      PDF, JSON and XML, charts with their data); a rolled-up finding's table of principals
      is in the JSON and XML.
    """
    summary = document.get("summary") or []
    for index, item in enumerate(summary, start=1):
        yield ("summary", "summary", "Summary", index, "label", "Label", item.get("label"))
        yield ("summary", "summary", "Summary", index, "value", "Value", item.get("value"))
    for section in document.get("sections") or []:
        sid, kind, title = section.get("id"), section.get("kind"), section.get("title")
        if kind == "facts":
            for index, item in enumerate(section.get("facts") or [], start=1):
                yield (sid, kind, title, index, "label", "Label", item.get("label"))
                yield (sid, kind, title, index, "value", "Value", item.get("value"))
        elif kind == "table":
            columns = section.get("columns") or []
            for index, row in enumerate(section.get("rows") or [], start=1):
                for column in columns:
                    yield (sid, kind, title, index, column["key"], column.get("title"), row.get(column["key"]))
        elif kind == "findings":
            for index, item in enumerate(section.get("findings") or [], start=1):
                for key, label in _FINDING_COLUMNS:
                    value = item.get(key)
                    if key == "evidence_event_ids":
                        value = " ".join(str(v) for v in (value or []))
                    yield (sid, kind, title, index, key, label, value)
