"""PDF export: the document rendered through templates/report.html + report.css by WeasyPrint.

Jinja2 runs with autoescape on, so every value (including `<script>` in an event or a label)
is shown as text. WeasyPrint runs no scripts and, here, fetches nothing over the network: the
URL fetcher only serves files from the package's templates folder.

Content: header block (organization, report name/id/type, period, local and UTC window, time
zone, window note, criteria, generated at, run id, event count, events SHA-256), summary
figures, every section by kind, and, when event rows are included, an events table with the
first `event_limit` events followed by "N more events in the CSV/Parquet file". A table the
document marks `complete` (never capped: the accounting of disclosures) that has more than
`APPENDIX_AFTER_ROWS` rows is listed in full in an appendix at the end, with a pointer where it
would stand; no row is ever left out of it. Every page carries "Page X of Y" and the report id
in its footer.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader

from compliance_reports.exporters.events import event_count, read_formatted_rows
from compliance_reports.reports.common import resource_label

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
EVIDENCE_LIMIT = 50
APPENDIX_AFTER_ROWS = 25
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


def _label(value: Any) -> str:
    return str(value or "").replace("_", " ")


def _generator(value: Any) -> str:
    """The generator as the header names it; a bare version gets the generator's name."""
    text = str(value or "")
    return text if text.startswith(GENERATOR_NAME) else f"{GENERATOR_NAME} {text}".strip()


def appendices(document: dict[str, Any]) -> dict[str, str]:
    """Section id -> appendix letter for complete tables too long for the body."""
    names: dict[str, str] = {}
    for section in document.get("sections") or []:
        if (section.get("kind") == "table" and section.get("complete")
                and len(section.get("rows") or []) > APPENDIX_AFTER_ROWS):
            index = len(names)
            names[section["id"]] = chr(ord("A") + index) if index < 26 else str(index + 1)
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
    env.filters["criteria"] = _criteria
    env.filters["label"] = _label
    env.filters["generator"] = _generator
    return env


def _events_context(events_path: Path, limit: int, formats: list[str]) -> dict[str, Any]:
    total = event_count(events_path)
    columns, rows = read_formatted_rows(events_path, limit)
    names = {c.name for c in columns}
    shown_columns = []
    for key, title in PDF_EVENT_COLUMNS:
        if key == "target" and ({"target_resource_type", "target_resource_id"} & names):
            shown_columns.append({"key": key, "title": title})
        elif key in names:
            shown_columns.append({"key": key, "title": title})
    for row in rows:
        kind, rid = row.get("target_resource_type"), row.get("target_resource_id")
        row["target"] = resource_label(kind, rid)
    more = max(total - len(rows), 0)
    if {"csv", "parquet"} & set(formats):
        where = "in the CSV/Parquet file"
    elif "xml" in formats:
        where = "in the XML file"
    else:
        where = "not shown (no event listing format is configured for this report)"
    return {
        "columns": shown_columns,
        "rows": rows,
        "total": total,
        "more": more,
        "more_note": f"{more} more events {where}.",
    }


def render_html(
    document: dict[str, Any],
    events_path: Path | None = None,
    *,
    event_limit: int = 200,
    formats: list[str] = ("pdf", "csv"),
) -> str:
    events = _events_context(events_path, event_limit, list(formats)) if events_path is not None else None
    template = environment().get_template("report.html")
    return template.render(document=document, events=events, evidence_limit=EVIDENCE_LIMIT,
                           appendices=appendices(document))


def _url_fetcher():
    """A fetcher that serves only files inside the templates folder and refuses every other URL."""
    from urllib.parse import unquote, urlparse

    from weasyprint.urls import URLFetcher

    class LocalTemplatesFetcher(URLFetcher):
        def fetch(self, url, headers=None):
            if url.startswith("file://"):
                target = Path(unquote(urlparse(url).path)).resolve()
                if target.is_relative_to(TEMPLATES_DIR):
                    return super().fetch(url, headers)
            raise ValueError(f"the report PDF does not load external resources ({url[:80]})")

    return LocalTemplatesFetcher(allowed_protocols=["file"])


def write_pdf(
    document: dict[str, Any],
    events_path: Path | None,
    out_path: Path,
    *,
    event_limit: int = 200,
    formats: list[str] = ("pdf", "csv"),
) -> Path:
    from weasyprint import CSS, HTML

    html = render_html(document, events_path, event_limit=event_limit, formats=formats)
    header = document.get("header") or {}
    fetcher = _url_fetcher()
    css = CSS(filename=str(TEMPLATES_DIR / "report.css"), url_fetcher=fetcher)
    HTML(string=html, base_url=str(TEMPLATES_DIR) + "/", url_fetcher=fetcher).write_pdf(
        str(out_path),
        stylesheets=[css],
        # Fixed metadata so the file does not depend on the clock where WeasyPrint allows it.
        pdf_identifier=f"{header.get('report_id')}:{header.get('period')}".encode("utf-8"),
    )
    return out_path
