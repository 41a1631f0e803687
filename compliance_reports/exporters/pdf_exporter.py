"""PDF export: the document rendered through templates/report.html + report.css by WeasyPrint.

Jinja2 runs with autoescape on, so every value (including `<script>` in an event or a label)
is shown as text. WeasyPrint runs no scripts and, here, fetches nothing over the network: the
URL fetcher (pdf_writer, which writes the HTML as PDF) only serves files from the package's
templates folder.

Page 1: header block (organization, report name and type, the period as people name it with
its timezone, local and UTC window, window note, criteria, generated at, run id, event count,
events SHA-256) and the executive summary (integrity and coverage verdicts, headline figures
against the previous period, findings by severity with the top ones, where the details are,
with page numbers). Then the main body in the document's order (findings, charts, analysis,
attestation), then the appendices on landscape pages: the sections the document marks
`appendix`, any `complete` table (the accounting of disclosures) longer than
`APPENDIX_AFTER_ROWS` rows, and, when event rows are included, the events table with the first
`event_limit` events. A table longer than `table_row_limit` rows shows its first rows and
"N of M rows shown; the complete table is in <files> of this publication" when another file of
the publication holds every row, and all its rows otherwise (`pdf_cap`); the event listing ends
with the same line naming the files that hold every event. Every page carries "Page X of Y" and
the report id in its footer.

Print rules: numbers right-aligned in tabular figures with locale-neutral thousands separators
(14,304), except identifiers (event ids); identifiers and timestamps (any value without
whitespace up to `TOKEN_MAX` characters) are never broken inside; charts are SVG (`chart_svg`,
drawn by pdf_writer for the `chart:` URLs of their images) with their alt text, which is also
printed as the caption.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader

from compliance_reports.exporters import pdf_cap
from compliance_reports.exporters.chart_svg import chart_url
from compliance_reports.exporters.events import event_count, read_formatted_rows
from compliance_reports.reports.common import resource_label

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
EVIDENCE_LIMIT = 50
APPENDIX_AFTER_ROWS = 25
TOKEN_MAX = 48              # longer unbroken values (hashes) may wrap anywhere
KEEP_TOGETHER_ROWS = 15     # a section this short is not split across pages
LANDSCAPE_COLUMNS = 8       # a main-body table this wide gets a landscape page
GENERATOR_NAME = "compliance_reports"

# Event columns shown in the PDF (the CSV/Parquet/XML files hold all of them).
PDF_EVENT_COLUMNS = (
    ("id", "ID"),
    ("timestamp", "Time (UTC)"),
    ("principal_id", "Principal"),
    ("action", "Action"),
    ("target", "Target"),
    ("status", "Status"),
    ("data_classification", "Class"),
)


def _cell(value: Any) -> str:
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return repr(round(value, 4))
    if isinstance(value, (list, tuple)):
        return ", ".join(_cell(v) for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_cell(v)}" for k, v in value.items())
    return str(value)


def _criteria(value: Any) -> str:
    if not isinstance(value, dict):
        return _cell(value)
    parts = []
    for key, item in value.items():
        if item in (None, [], False, ""):
            continue
        name = key.replace("_", " ")
        parts.append(name if item is True else f"{name}: {_cell(item)}")
    return "; ".join(parts) if parts else "all events of the organization"


def _id_like(name: Any) -> bool:
    """A column key or fact label naming an identifier, whose digits take no separators."""
    text = str(name or "").lower()
    return text in ("id", "event") or text.endswith(("_id", " id", "_ids", " ids", "event",
                                                       "evidence"))


def _formatted(value: Any, name: Any = None) -> str:
    """A cell's text: numbers with thousands separators (not identifiers), floats to 4 places."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _cell(value)
    if _id_like(name):
        return _cell(value)
    if isinstance(value, int):
        return f"{value:,}"
    return f"{round(value, 4):,}"


def _cell_class(value: Any) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return "num"
    if isinstance(value, str) and value and len(value) <= TOKEN_MAX and not any(ch.isspace() for ch in value):
        return "tok"
    return ""


def _column_class(rows: list[dict[str, Any]], key: str) -> str:
    """Header alignment follows the column's values: right for a column of numbers."""
    values = [r.get(key) for r in rows if r.get(key) is not None]
    return "num" if values and all(_cell_class(v) == "num" for v in values) else ""


def _signed(value: Any) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return "—"
    text = f"{value:+,}" if isinstance(value, int) else f"{round(value, 4):+,}"
    return text.replace("-", "\u2212")


def _signed_pct(value: Any) -> str:
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return "—"
    return f"{value:+,.1f} %".replace("-", "\u2212")


def _label(value: Any) -> str:
    return str(value or "").replace("_", " ")


def _generator(value: Any) -> str:
    """The generator as the header names it; a bare version gets the generator's name."""
    text = str(value or "")
    return text if text.startswith(GENERATOR_NAME) else f"{GENERATOR_NAME} {text}".strip()


def _letter(index: int) -> str:
    return chr(ord("A") + index) if index < 26 else str(index + 1)


def _appendix_with_content(section: dict[str, Any]) -> bool:
    return bool(section.get("appendix")) and (section.get("kind") != "table"
                                              or bool(section.get("rows")))


def appendices(document: dict[str, Any]) -> dict[str, str]:
    """Section id -> appendix letter: sections marked `appendix` (an empty table stays in the
    body, as "No rows."), and complete tables too long for the body."""
    names: dict[str, str] = {}
    for section in document.get("sections") or []:
        if _appendix_with_content(section) or (
                section.get("kind") == "table" and section.get("complete")
                and len(section.get("rows") or []) > APPENDIX_AFTER_ROWS):
            names[section["id"]] = _letter(len(names))
    return names


def environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(str(TEMPLATES_DIR)),
        autoescape=True,
        trim_blocks=False,
        lstrip_blocks=False,
        keep_trailing_newline=True,
    )
    env.filters["cell"] = _cell
    env.filters["cellf"] = _formatted
    env.filters["cell_class"] = _cell_class
    env.filters["column_class"] = _column_class
    env.filters["signed"] = _signed
    env.filters["signed_pct"] = _signed_pct
    env.filters["chart_url"] = chart_url
    env.filters["criteria"] = _criteria
    env.filters["label"] = _label
    env.filters["generator"] = _generator
    return env


def _events_context(events_path: Path, limit: int, formats: list[str],
                    names: dict[str, str]) -> dict[str, Any]:
    total = event_count(events_path)
    columns, rows = read_formatted_rows(events_path, limit)
    present = {c.name for c in columns}
    shown_columns = []
    for key, title in PDF_EVENT_COLUMNS:
        if key == "target" and ({"target_resource_type", "target_resource_id"} & present):
            shown_columns.append({"key": key, "title": title})
        elif key in present:
            shown_columns.append({"key": key, "title": title})
    for row in rows:
        kind, rid = row.get("target_resource_type"), row.get("target_resource_id")
        row["target"] = resource_label(kind, rid)
    more = max(total - len(rows), 0)
    carriers = pdf_cap.event_carriers(total, formats)
    if carriers:
        note = pdf_cap.shown_note(len(rows), total, [names[fmt] for fmt in carriers])
    else:
        note = f"{more} more events not shown (no event listing format is configured for this report)."
    return {
        "columns": shown_columns,
        "rows": rows,
        "total": total,
        "more": more,
        "more_note": note,
    }


def render_html(
    document: dict[str, Any],
    events_path: Path | None = None,
    *,
    event_limit: int = 200,
    formats: list[str] = ("pdf", "csv"),
    table_row_limit: int = pdf_cap.DEFAULT_TABLE_ROW_LIMIT,
    file_names: dict[str, str] | None = None,
) -> str:
    """The report's HTML. `formats` are the publication's formats and `file_names` their file
    names (default: uncompressed, unencrypted names from the header), named by the notes that
    say where the rows the PDF leaves out are; `events_path` None: the publication carries no
    event rows, so its CSV and Parquet hold the document's tables."""
    formats = list(formats)
    names = appendices(document)
    if file_names is None:
        file_names = pdf_cap.published_names(document.get("header") or {}, formats)
    caps = pdf_cap.table_caps(document, table_row_limit, formats, events_path is not None, file_names)
    shown = {**document, "sections": [
        {**s, "rows": s["rows"][:caps[s["id"]]["shown"]], "pdf_cap": caps[s["id"]]}
        if s.get("id") in caps else s
        for s in document.get("sections") or []
    ]}
    events = (_events_context(events_path, event_limit, formats, file_names)
              if events_path is not None else None)
    if events is not None:
        events["letter"] = _letter(len(names))
    template = environment().get_template("report.html")
    return template.render(document=shown, events=events, evidence_limit=EVIDENCE_LIMIT,
                           appendices=names, capped=caps, keep_together_rows=KEEP_TOGETHER_ROWS,
                           landscape_columns=LANDSCAPE_COLUMNS)


def charts(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Section id -> chart section: what the `chart:` images of the report HTML show."""
    return {s["id"]: s for s in document.get("sections") or [] if s.get("kind") == "chart"}


def pdf_identifier(document: dict[str, Any]) -> bytes:
    """The PDF's fixed identifier, so that the file does not depend on the clock where WeasyPrint
    allows it."""
    header = document.get("header") or {}
    return f"{header.get('report_id')}:{header.get('period')}".encode("utf-8")


def write_pdf(
    document: dict[str, Any],
    events_path: Path | None,
    out_path: Path,
    *,
    event_limit: int = 200,
    formats: list[str] = ("pdf", "csv"),
    table_row_limit: int = pdf_cap.DEFAULT_TABLE_ROW_LIMIT,
    file_names: dict[str, str] | None = None,
) -> Path:
    from compliance_reports.exporters.pdf_writer import write_html

    html = render_html(document, events_path, event_limit=event_limit, formats=formats,
                       table_row_limit=table_row_limit, file_names=file_names)
    return write_html(html, charts(document), out_path, pdf_identifier(document))
