"""What a report mail says: subject prefix, plain-text and HTML bodies (pure; no SMTP here).

Body, in both parts (text/plain and text/html, multipart/alternative):
- the report and the period as a reader names it ("October 2026", with the timezone);
- the headline figures (document["summary"]) with their change against the previous period
  when the document carries one;
- findings counted by severity, with the rules (finding codes) that raised them;
- the integrity verdict and whether the events cover the whole window;
- a link to the run in the Dagster UI;
- every stored file with size and sha256 and how to get it: attached, a download link, or,
  when no URL can be made, "available from the operator" (a filesystem path never appears);
- identifiers for the record (report id, organization, period key, run id, manifest sha256).

Only aggregates travel in a mail (reports.digest): no event, no table row, no finding title or
detail (those can name principals and resources). The HTML part is rendered by Jinja2 with
autoescape on, so a report name such as `<b>St Mary's</b>` is shown as text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from jinja2 import Environment, FileSystemLoader, select_autoescape

from compliance_reports.artifacts.publication import Publication, PublishedFile
from compliance_reports.reports.digest import SEVERITIES, ReportDigest

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"
HTML_TEMPLATE = "mail.html"

Delivery = Literal["attached", "link", "operator"]


@dataclass(frozen=True)
class FileLine:
    """One stored file as the mail lists it."""

    filename: str
    media_type: str
    size: int
    sha256: str
    delivery: Delivery
    url: str | None = None

    @property
    def size_text(self) -> str:
        return human_size(self.size)


def human_size(n: int) -> str:
    size = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{n:,} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n:,} bytes"


def file_line(f: PublishedFile, attached: bool, url: str | None) -> FileLine:
    delivery: Delivery = "attached" if attached else ("link" if url else "operator")
    return FileLine(f.filename, f.media_type, f.size, f.sha256, delivery, url if not attached else None)


# ---------------------------------------------------------------- figures


def format_value(value: Any) -> str:
    """Locale-neutral: thousands separators (14,304), booleans yes/no, None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) >= 100 else f"{value:,.4g}"
    return str(value)


def format_change(change: Any, change_pct: Any) -> str:
    """`+120 (+3.4%)`, `-5`, `+2.5%`, or "" when the document gives no change."""
    parts = []
    if isinstance(change, (int, float)) and not isinstance(change, bool):
        parts.append(("+" if change > 0 else "") + format_value(change))
    if isinstance(change_pct, (int, float)) and not isinstance(change_pct, bool):
        pct = f"{'+' if change_pct > 0 else ''}{change_pct:,.1f}%"
        parts.append(f"({pct})" if parts else pct)
    return " ".join(parts)


def severity_prefix(digest: ReportDigest | None) -> str:
    """`[2 critical] `, `[40 warnings] `, or "" for a clean report (or no digest)."""
    top = digest.top_severity if digest is not None else None
    if top is None:
        return ""
    severity, count = top
    word = "critical" if severity == "critical" else ("warning" if count == 1 else "warnings")
    return f"[{count:,} {word}] "


def findings_line(digest: ReportDigest) -> str:
    counts = digest.findings
    if not any(counts.values()):
        return "No findings."
    return ", ".join(f"{counts[s]:,} {s}" for s in SEVERITIES) + "."


def reissue_note(publication: Publication) -> str | None:
    """What a re-issue says first: the run and manifest sha256 it supersedes."""
    previous = publication.reissue_of
    if not previous:
        return None
    return (f"This is a re-issue: it supersedes the version sent earlier from run "
            f"{previous.get('run_id') or 'unknown'} (manifest sha256 {previous.get('manifest_sha256')}).")


# ---------------------------------------------------------------- view


def mail_view(
    publication: Publication,
    files: list[FileLine],
    *,
    run_url: str | None,
    oversize_note: str | None = None,
) -> dict[str, Any]:
    """Everything both body parts show, as plain values."""
    p, d = publication, publication.digest
    findings = []
    if d is not None:
        for severity in SEVERITIES:
            rules = ", ".join(f"{code} ({n:,})" if n > 1 else code for code, n in d.rules.get(severity, ()))
            findings.append({"severity": severity, "count": d.findings.get(severity, 0), "rules": rules})
    figures = [
        {"label": f.label, "value": format_value(f.value), "change": format_change(f.change, f.change_pct)}
        for f in (d.figures if d is not None else ())
    ]
    coverage = None
    if d is not None and d.covers_window is not None:
        coverage = ("the events cover the whole window" if d.covers_window
                    else "the events do not cover the whole window (see the report's coverage section)")
    return {
        "report_name": p.report_name,
        "period_label": d.period_label if d is not None else p.period,
        "timezone": d.timezone if d is not None else None,
        "has_digest": d is not None,
        "findings_line": findings_line(d) if d is not None else None,
        "figures": figures,
        "with_change": any(f["change"] for f in figures),
        "findings": findings,
        "integrity_verdict": d.integrity_verdict if d is not None else None,
        "integrity_reason": d.integrity_reason if d is not None else None,
        "coverage": coverage,
        "run_url": run_url,
        "files": files,
        "oversize_note": oversize_note,
        "reissue_note": reissue_note(p),
        "identifiers": [
            ("Report id", p.report_id),
            ("Report type", p.report_type or "-"),
            ("Organization", p.organization_id),
            ("Period key", p.period),
            ("Run id", p.run_id or "-"),
            ("Manifest sha256", p.manifest_sha256),
        ],
    }


_OPERATOR = "not attached and no download link can be made: ask the operator of compliance-reports for it"
_FOOTER = (
    "Check a file with `sha256sum FILE`; the value must match the one listed here. "
    "This message carries aggregate figures only, no audit event data; the events are in the files."
)


def render_text(view: dict[str, Any]) -> str:
    lines = [f"{view['report_name']} - {view['period_label']}"
             + (f" ({view['timezone']})" if view["timezone"] else ""), ""]
    if view["reissue_note"]:
        lines += [view["reissue_note"], ""]
    if not view["has_digest"]:
        lines += ["The stored report lists no report document, so no figures are shown here; "
                  "they are in the files.", ""]
    else:
        lines += [f"Findings: {view['findings_line']}", ""]
    if view["figures"]:
        lines.append("Headline figures")
        width = max(len(f["label"]) for f in view["figures"])
        values = max(len(f["value"]) for f in view["figures"])  # numbers right-aligned
        for f in view["figures"]:
            change = f"   {f['change']}" if f["change"] else ""
            lines.append(f"  {f['label'].ljust(width)}  {f['value'].rjust(values)}{change}")
        if view["with_change"]:
            lines.append("  (change against the previous period)")
        lines.append("")
    if view["findings"]:
        lines.append("Findings by severity")
        for item in view["findings"]:
            rules = f"   {item['rules']}" if item["rules"] else ""
            lines.append(f"  {item['severity'].ljust(8)}  {item['count']:>6,}{rules}")
        lines.append("")
    if view["integrity_verdict"]:
        reason = f" - {view['integrity_reason']}" if view["integrity_reason"] else ""
        lines.append(f"Integrity: {view['integrity_verdict']}{reason}")
    if view["coverage"]:
        lines.append(f"Coverage: {view['coverage']}")
    if view["integrity_verdict"] or view["coverage"]:
        lines.append("")
    if view["run_url"]:
        lines += [f"Run in the Dagster UI: {view['run_url']}", ""]
    if view["oversize_note"]:
        lines += [view["oversize_note"], ""]
    if not view["files"]:
        lines += ["This report produced no files.", ""]
    else:
        lines.append("Files")
        for f in view["files"]:
            lines.append(f"  - {f.filename} ({f.media_type}, {f.size_text}, {f.size:,} bytes)")
            lines.append(f"    sha256 {f.sha256}")
            if f.delivery == "attached":
                lines.append("    attached")
            elif f.delivery == "link":
                lines.append(f"    download: {f.url}")
            else:
                lines.append(f"    {_OPERATOR} (name the file and its sha256)")
        lines.append("")
    lines += [f"{k}: {v}" for k, v in view["identifiers"]]
    lines += ["", _FOOTER]
    return "\n".join(lines) + "\n"


_env: Environment | None = None


def _environment() -> Environment:
    global _env
    if _env is None:
        _env = Environment(
            loader=FileSystemLoader(str(TEMPLATES_DIR)),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True, lstrip_blocks=True,
        )
    return _env


def render_html(view: dict[str, Any]) -> str:
    return _environment().get_template(HTML_TEMPLATE).render(
        view=view, operator=_OPERATOR, footer=_FOOTER
    )


def render_bodies(
    publication: Publication,
    files: list[FileLine],
    *,
    run_url: str | None,
    oversize_note: str | None = None,
) -> tuple[str, str]:
    """(text, html) bodies of a report mail."""
    view = mail_view(publication, files, run_url=run_url, oversize_note=oversize_note)
    return render_text(view), render_html(view)
