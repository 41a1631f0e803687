"""The report's HTML (pdf_exporter.render_html) written as PDF by WeasyPrint.

This module and what it imports (WeasyPrint, chart_svg with matplotlib, artifacts.checksums)
are all the PDF process (pdf_process) loads. That process used to render the HTML itself: the
exporters' imports (pyarrow, pydantic, SQLAlchemy, cryptography) and reading the listed events
with Arrow kept ~190 MB there that WeasyPrint never used. The caller, which has them loaded
anyway, now renders the HTML; the process draws the charts (matplotlib would cost the caller
~35 MB) and lays the document out.

User-agent stylesheet: WeasyPrint's own, except six rules for pseudo-elements that name no
element (`::marker`, `::footnote-call`, `::footnote-marker`, `::note-call`, `::note-marker`,
`::note-callback`). Each such rule gives every element of the document one more computed style,
six per table cell, about half of the memory a table row costs. The report has no footnotes
nor notes, and its only list items are `li` elements, so the footnote and note rules are left
out and the marker rule applies to `li::marker`: the pages are the same, drawn by the same
operators (`test_pdf_writer`). With another WeasyPrint whose stylesheet lacks these rules the
sheet is used as it is.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from weasyprint import CSS, HTML
from weasyprint import html as weasy_html
from weasyprint.css.counters import CounterStyle
from weasyprint.document import Document
from weasyprint.urls import URLFetcher, URLFetcherResponse

from compliance_reports.artifacts.checksums import sha256_file
from compliance_reports.exporters import chart_svg

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
_NOTE_RULES = re.compile(r"^::(?:footnote|note)-[a-z]+ \{[^}]*\}\n", re.M)
_MARKER_RULE = "\n::marker {"


@cache
def user_agent_css() -> str:
    """WeasyPrint's user-agent stylesheet without the rules for every element's pseudo-elements
    the report never shows (see the module doc)."""
    text = _NOTE_RULES.sub("", weasy_html.UA)
    return text.replace(_MARKER_RULE, "\nli::marker {")


@cache
def _user_agent_sheet() -> CSS:
    # The sheet's @counter-style rules are WeasyPrint's, already in the counter styles it gives
    # every document: parsed again, into a dictionary of their own, they change nothing there.
    return CSS(string=user_agent_css(), counter_style=CounterStyle())


class ReportHTML(HTML):
    """A report's HTML with the report's user-agent stylesheet."""

    def _ua_stylesheets(self, forms=False):
        return [_user_agent_sheet(), *super()._ua_stylesheets(forms)[1:]]


class ReportFetcher(URLFetcher):
    """Serves only files inside the templates folder and the report's charts, drawn here as SVG
    from their sections (``chart:<section id>`` URLs, `chart_svg.chart_url`), and refuses every
    other URL."""

    def __init__(self, charts: Mapping[str, dict[str, Any]]) -> None:
        super().__init__(allowed_protocols=["file"])
        self._charts = charts

    def fetch(self, url, headers=None):
        chart = chart_svg.section_id(url)
        if chart is not None:
            return URLFetcherResponse(url, chart_svg.chart_svg(self._charts[chart]),
                                      {"Content-Type": "image/svg+xml"})
        if url.startswith("file://"):
            target = Path(unquote(urlparse(url).path)).resolve()
            if target.is_relative_to(TEMPLATES_DIR):
                return super().fetch(url, headers)
        raise ValueError(f"the report PDF does not load external resources ({url[:80]})")


def layout(html: str, charts: Mapping[str, dict[str, Any]]) -> Document:
    """`html` laid out in pages with templates/report.css; `charts`: section id -> the chart
    sections its images name."""
    fetcher = ReportFetcher(charts)
    css = CSS(filename=str(TEMPLATES_DIR / "report.css"), url_fetcher=fetcher)
    return ReportHTML(string=html, base_url=str(TEMPLATES_DIR) + "/",
                      url_fetcher=fetcher).render(stylesheets=[css])


def write_html(html: str, charts: Mapping[str, dict[str, Any]], out_path: Path,
               identifier: bytes) -> Path:
    """`html` laid out and written as PDF to `out_path`; `identifier` is the PDF's fixed
    identifier."""
    layout(html, charts).write_pdf(str(out_path), pdf_identifier=identifier)
    return Path(out_path)


def write_and_hash(html: str, charts: Mapping[str, dict[str, Any]], out_path: Path,
                   identifier: bytes) -> str:
    """`write_html`, then the SHA-256 of the written file (what the PDF process answers)."""
    return sha256_file(write_html(html, charts, out_path, identifier))
