"""The aggregates of a report document that may travel outside the report files (mail subject
and body, XLSX summary): never an event, a row of a table, a finding's title or detail.

What a digest holds:
- the period as a reader names it ("October 2026") and the report's frequency and timezone;
- the headline figures of document["summary"]: label, value and, when the document carries
  them, the change against the previous period (`change`, `change_pct`);
- findings counted by severity, and per severity the rule codes with their counts (rule codes
  are the builders' slugs such as `failed_logins`; titles and details can name principals and
  are left out);
- the integrity verdict with its reason (counts only) and whether the events cover the window.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from compliance_reports.periods import human_period_label

SEVERITIES = ("critical", "warning", "info")
# A headline value is a figure or a short verdict; longer text is not a headline.
MAX_TEXT = 120


@dataclass(frozen=True)
class Figure:
    label: str
    value: Any
    change: Any = None
    change_pct: Any = None


@dataclass(frozen=True)
class ReportDigest:
    period: str
    frequency: str | None
    period_label: str
    timezone: str | None
    event_count: int | None
    figures: tuple[Figure, ...] = ()
    findings: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SEVERITIES, 0))
    rules: dict[str, tuple[tuple[str, int], ...]] = field(default_factory=dict)
    integrity_verdict: str | None = None
    integrity_reason: str | None = None
    covers_window: bool | None = None

    @property
    def top_severity(self) -> tuple[str, int] | None:
        """(severity, count) of the highest severity present among critical and warning."""
        for severity in ("critical", "warning"):
            if self.findings.get(severity):
                return severity, self.findings[severity]
        return None


def _scalar(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = " ".join(str(value).split())
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


def severity_counts(document: dict[str, Any]) -> dict[str, int]:
    """Findings of every "findings" section counted by severity (all three keys present)."""
    counts = dict.fromkeys(SEVERITIES, 0)
    for section in document.get("sections") or []:
        if section.get("kind") == "findings":
            for item in section.get("findings") or []:
                if item.get("severity") in counts:
                    counts[item["severity"]] += 1
    return counts


def _rules(document: dict[str, Any]) -> dict[str, tuple[tuple[str, int], ...]]:
    by_severity: dict[str, dict[str, int]] = {s: {} for s in SEVERITIES}
    for section in document.get("sections") or []:
        if section.get("kind") == "findings":
            for item in section.get("findings") or []:
                codes = by_severity.get(item.get("severity"))
                if codes is not None:
                    code = str(item.get("code") or "unnamed")
                    codes[code] = codes.get(code, 0) + 1
    return {s: tuple(sorted(c.items(), key=lambda kv: (-kv[1], kv[0]))) for s, c in by_severity.items() if c}


def period_label(period: str, frequency: str | None) -> str:
    """The human period label, or the period key when the frequency is unknown."""
    if frequency:
        try:
            return human_period_label(period, frequency)
        except ValueError:
            pass
    return period


def _integrity(data: dict[str, Any]) -> tuple[str | None, str | None]:
    block = data.get("integrity") if isinstance(data.get("integrity"), dict) else data
    verdict, reason = block.get("verdict"), block.get("reason")
    return (_scalar(verdict) if verdict else None, _scalar(reason) if reason else None)


def digest_document(document: dict[str, Any]) -> ReportDigest:
    header = document.get("header") or {}
    data = document.get("data") if isinstance(document.get("data"), dict) else {}
    frequency = header.get("frequency")
    period = str(header.get("period") or "")
    figures = tuple(
        Figure(
            label=str(_scalar(item.get("label")) or ""),
            value=_scalar(item.get("value")),
            change=_scalar(item.get("change")),
            change_pct=_scalar(item.get("change_pct")),
        )
        for item in document.get("summary") or []
        if isinstance(item, dict)
    )
    coverage = data.get("coverage") if isinstance(data.get("coverage"), dict) else {}
    verdict, reason = _integrity(data)
    count = header.get("event_count")
    return ReportDigest(
        period=period,
        frequency=frequency,
        period_label=period_label(period, frequency),
        timezone=header.get("timezone"),
        event_count=count if isinstance(count, int) else None,
        figures=figures,
        findings=severity_counts(document),
        rules=_rules(document),
        integrity_verdict=verdict,
        integrity_reason=reason,
        covers_window=coverage.get("covers_whole_window"),
    )
