"""The report document: one versioned, JSON-serialisable structure for every report type.

Builders (report content) produce it; exporters (PDF, CSV, JSON, XML, Parquet) render it
without knowing the report type, because every type-specific part is expressed as generic
sections:

    {
      "schema_version": "1.0",
      "header": {...common header, see HEADER_FIELDS...},
      "summary": [{"label": str, "value": scalar,             # headline figures; a figure
                   "previous"?: number, "change"?: number,    # compared with the previous
                   "change_pct"?: number|None}],              # period carries these three
      "executive_summary": ExecutiveSummary,                  # page 1 (see below)
      "comparison": Comparison,                               # the previous period's figures
      "charts": [{"id": str, "title": str, "alt": str}],      # index of the chart sections
      "sections": [Section, ...],                             # in display order
      "data": {...}                                           # type-specific structured data
    }

Sections are in reading order: findings first, then the analysis, then the appendices
(sections with "appendix": true: event listings, the complete accounting of disclosures, raw
tables). Paged formats print appendices after the main body (landscape in the PDF).

ExecutiveSummary (``executive_summary.build``):
    {"period_label": "October 2026", "timezone": str, "window_local": str, "window_utc": str,
     "headline": [summary items with their comparison, integrity and coverage left out],
     "integrity": {"verdict": str|None, "reason": str|None},
     "coverage": {"status": str, "text": str, "longest_silence_hours": number|None,
                  "findings": int},
     "findings": {"critical": int, "warning": int, "info": int, "total": int,
                  "top": [{"severity", "code", "title", "section_id"}]},   # at most TOP_FINDINGS
     "details": [{"section_id": str, "title": str, "what": str}]}       # where the details are

Comparison (``comparison.compare``): one aggregate query over the previous and the current
window together:
    {"previous_period": key, "previous_period_label": str, "previous_window_start_utc": str,
     "previous_window_end_utc": str, "note": str|None,
     "figures": [{"label": str, "current": number, "previous": number, "change": number,
                  "change_pct": number|None}]}     # change_pct None when previous is 0

A Section is a dict with "id" (slug), "title", optional "description", and "kind":
- "facts":       "facts": [{"label": str, "value": scalar}]
- "table":       "columns": [{"key": str, "title": str}], "rows": [{key: scalar}], optional
                 "total_rows" (when rows were capped) and "note"; "complete": true marks a
                 table that is never capped (a legal record such as the accounting of
                 disclosures): every row is there, and paged formats show all of them
                 unless another file of the same publication holds them (the PDF then
                 shows the first rows and names that file: exporters/pdf_cap.py)
- "findings":    "findings": [{"severity": "info"|"warning"|"critical", "code": str,
                 "title": str, "detail": str, "evidence_event_ids": [int|str]}]
- "attestation": "statement": str, "fields": [str]  (blank lines for reviewer sign-off)
- "text":        "paragraphs": [str]
- "chart":       "alt": str (the chart in words), "chart": {"type": "bar"|"stacked_bar"|"barh",
                 "x_label": str, "y_label": str, "categories": [str],
                 "series": [{"name": str, "role": "main"|"failure"|"warning", "values": [number]}],
                 optional "reference": {"label": str, "at": str} (a category marked as a
                 threshold, e.g. the deadline)}: the data of the picture, drawn by the exporters

Findings may carry "subjects": {"title": str, "columns": [{"key","title"}], "rows": [...],
"total": int} when one finding rolls up a rule met by several principals or resources
(``rollup``), and optional "subject" / "measure" / "rule" on a finding about one of them.
Any section may carry "appendix": true (see the order above).

Scalars are str, int, float, bool or None; datetimes are ISO 8601 strings. Everything is
plain JSON so that the same document gives byte-identical exports on every run.

A re-issue (the period was published before with other content) carries a top-level
"reissue_of": {"run_id", "manifest_sha256", "content_fingerprint"} naming what it supersedes,
and a first "text" section with id REISSUE_SECTION_ID saying so, so that every format shows it.

Content fingerprint: the SHA-256 of the canonical JSON of the document minus its volatile
parts, which differ between two runs of one period over the same audit rows:
- header fields VOLATILE_HEADER_FIELDS (generated_at, run_id) and the top-level "reissue_of"
  with the re-issue section (the generation duration is run metadata, never in the document);
- the integrity checkpoint bookkeeping, i.e. which signed checkpoint the run compared with or
  wrote (a re-run finds the checkpoint its first run wrote): the "checkpoints" section, facts
  labelled "Previous checkpoint..." or "Checkpoint written...", "integrity_note" findings, and
  the keys previous_checkpoint, checkpoint_written and notes in `data` and `data.integrity`.
  What the comparison found (verdict, problems, breaks) is content.
The delivery ledger keys on the fingerprint, so re-running a period with unchanged content
delivers nothing new.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

SCHEMA_VERSION = "1.0"

HEADER_FIELDS = (
    "organization_id",
    "report_id",
    "report_name",
    "report_type",
    "frequency",
    "period",
    "timezone",
    "window_start_local",
    "window_end_local",
    "window_start_utc",
    "window_end_utc",
    "window_hours",
    "window_note",          # set when the window is 23 or 25 hours long (DST), else None
    "generated_at",
    "generator_version",
    "run_id",
    "criteria",
    "event_count",
    "events_sha256",        # SHA-256 over the canonical event rows (see events_digest)
)

SECTION_KINDS = ("facts", "table", "findings", "attestation", "text", "chart")

# Run-specific values: they differ between two runs of one period over the same audit rows.
# (The generation duration is run metadata, never part of the document.)
VOLATILE_HEADER_FIELDS = ("generated_at", "run_id")
VOLATILE_FIELDS = ("reissue_of",)
REISSUE_SECTION_ID = "reissue"
CHECKPOINT_SECTION_ID = "checkpoints"
CHECKPOINT_FACT_PREFIXES = ("Previous checkpoint", "Checkpoint written")
CHECKPOINT_NOTE_CODE = "integrity_note"
CHECKPOINT_DATA_KEYS = ("previous_checkpoint", "checkpoint_written", "notes")


def facts(section_id: str, title: str, items: list[tuple[str, Any]], description: str | None = None) -> dict:
    return {
        "id": section_id, "title": title, "kind": "facts", "description": description,
        "facts": [{"label": label, "value": value} for label, value in items],
    }


def table(
    section_id: str,
    title: str,
    columns: list[tuple[str, str]],
    rows: list[dict[str, Any]],
    description: str | None = None,
    total_rows: int | None = None,
    note: str | None = None,
    complete: bool = False,
) -> dict:
    if complete and total_rows not in (None, len(rows)):
        raise ValueError(f"table {section_id!r} is complete but holds {len(rows)} of {total_rows} rows")
    section = {
        "id": section_id, "title": title, "kind": "table", "description": description,
        "columns": [{"key": key, "title": col_title} for key, col_title in columns],
        "rows": rows,
        "total_rows": len(rows) if total_rows is None else total_rows,
        "note": note,
    }
    if complete:
        section["complete"] = True
    return section


def findings(section_id: str, title: str, items: list[dict[str, Any]], description: str | None = None) -> dict:
    return {"id": section_id, "title": title, "kind": "findings", "description": description,
            "findings": items}


SEVERITIES = ("critical", "warning", "info")   # most severe first


def finding(
    severity: str, code: str, title: str, detail: str, evidence: list[Any],
    *, subject: str | None = None, measure: Any = None, rule: str | None = None,
) -> dict:
    """One finding; ``subject`` (the principal, resource or time range it is about),
    ``measure`` (the figure that met the rule) and ``rule`` (the rule's title) let ``rollup``
    put several findings of one rule in one table."""
    if severity not in SEVERITIES:
        raise ValueError(f"severity must be info, warning or critical, not {severity!r}")
    item = {"severity": severity, "code": code, "title": title, "detail": detail,
            "evidence_event_ids": list(evidence)}
    if subject is not None:
        item["subject"] = subject
    if measure is not None:
        item["measure"] = measure
    if rule is not None:
        item["rule"] = rule
    return item


def attestation(section_id: str, title: str, statement: str, fields: list[str]) -> dict:
    return {"id": section_id, "title": title, "kind": "attestation", "statement": statement,
            "fields": fields}


def text(section_id: str, title: str, paragraphs: list[str]) -> dict:
    return {"id": section_id, "title": title, "kind": "text", "paragraphs": paragraphs}


CHART_TYPES = ("bar", "stacked_bar", "barh")
SERIES_ROLES = ("main", "failure", "warning")  # colours: neutral, critical, warning


def chart(
    section_id: str, title: str, chart_type: str, categories: list[str],
    series: list[dict[str, Any]], *, alt: str, x_label: str, y_label: str,
    description: str | None = None, reference: dict[str, str] | None = None,
) -> dict:
    if chart_type not in CHART_TYPES:
        raise ValueError(f"chart type must be one of {CHART_TYPES}, not {chart_type!r}")
    for item in series:
        if len(item["values"]) != len(categories):
            raise ValueError(f"chart {section_id!r}: series {item['name']!r} has "
                             f"{len(item['values'])} values for {len(categories)} categories")
        if item.get("role", "main") not in SERIES_ROLES:
            raise ValueError(f"chart {section_id!r}: unknown series role {item.get('role')!r}")
    body: dict[str, Any] = {"type": chart_type, "x_label": x_label, "y_label": y_label,
                            "categories": categories,
                            "series": [{"role": "main", **item} for item in series]}
    if reference is not None:
        body["reference"] = reference
    return {"id": section_id, "title": title, "kind": "chart", "description": description,
            "alt": alt, "chart": body}


def appendix(section: dict) -> dict:
    """The section, marked to be printed after the main body (see the order above)."""
    return {**section, "appendix": True}


def canonical_json(document: dict[str, Any]) -> bytes:
    """Stable bytes of a document: sorted keys, no whitespace variance, UTF-8."""
    return json.dumps(document, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def document_sha256(document: dict[str, Any]) -> str:
    return hashlib.sha256(canonical_json(document)).hexdigest()


def content_fingerprint(document: dict[str, Any]) -> str:
    """SHA-256 of the document without its volatile parts (see the module docstring)."""
    return hashlib.sha256(canonical_json(stable_content(document))).hexdigest()


def stable_content(document: dict[str, Any]) -> dict[str, Any]:
    """A copy of `document` without its volatile parts (what the fingerprint hashes)."""
    stable = {k: v for k, v in document.items() if k not in VOLATILE_FIELDS}
    if isinstance(stable.get("header"), dict):
        stable["header"] = {k: v for k, v in stable["header"].items() if k not in VOLATILE_HEADER_FIELDS}
    if isinstance(stable.get("sections"), list):
        stable["sections"] = [_stable_section(s) for s in stable["sections"]
                              if s.get("id") not in (REISSUE_SECTION_ID, CHECKPOINT_SECTION_ID)]
    data = stable.get("data")
    if isinstance(data, dict):
        data = _without(data, CHECKPOINT_DATA_KEYS)
        if isinstance(data.get("integrity"), dict):
            data["integrity"] = _without(data["integrity"], CHECKPOINT_DATA_KEYS)
        stable["data"] = data
    return stable


def _without(mapping: dict[str, Any], keys) -> dict[str, Any]:
    return {k: v for k, v in mapping.items() if k not in keys}


def _stable_section(section: dict[str, Any]) -> dict[str, Any]:
    if section.get("kind") == "facts":
        return {**section, "facts": [f for f in section.get("facts", [])
                                     if not str(f.get("label", "")).startswith(CHECKPOINT_FACT_PREFIXES)]}
    if section.get("kind") == "findings":
        return {**section, "findings": [f for f in section.get("findings", [])
                                        if f.get("code") != CHECKPOINT_NOTE_CODE]}
    return section


def with_reissue(document: dict[str, Any], run_id: str | None, manifest_sha256: str,
                 fingerprint: str | None) -> dict[str, Any]:
    """A copy of `document` marked as re-issued, superseding the named earlier issue."""
    notice = text(REISSUE_SECTION_ID, "Re-issued", [
        "This report was re-issued: its content differs from the version published earlier "
        f"for the same period (run {run_id or 'unknown'}, manifest sha256 {manifest_sha256}), "
        "which it supersedes.",
    ])
    sections = [s for s in document.get("sections", []) if s.get("id") != REISSUE_SECTION_ID]
    return {
        **document,
        "reissue_of": {"run_id": run_id, "manifest_sha256": manifest_sha256,
                       "content_fingerprint": fingerprint},
        "sections": [notice, *sections],
    }


def validate_document(document: dict[str, Any]) -> None:
    """Raise ValueError naming the first structural problem (for builders' tests)."""
    if document.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(f"schema_version must be {SCHEMA_VERSION!r}")
    header = document.get("header")
    if not isinstance(header, dict):
        raise ValueError("header is missing")
    missing = [f for f in HEADER_FIELDS if f not in header]
    if missing:
        raise ValueError(f"header lacks {missing}")
    seen = set()
    for index, section in enumerate(document.get("sections", [])):
        sid = section.get("id")
        if not sid or sid in seen:
            raise ValueError(f"sections[{index}] has a missing or repeated id {sid!r}")
        seen.add(sid)
        if section.get("kind") not in SECTION_KINDS:
            raise ValueError(f"section {sid!r} has unknown kind {section.get('kind')!r}")
        if section["kind"] == "chart" and not section.get("alt"):
            raise ValueError(f"chart {sid!r} has no alt text")
        if section["kind"] == "table":
            if section.get("complete") and section.get("total_rows") != len(section["rows"]):
                raise ValueError(f"section {sid!r} is complete but does not hold all its rows")
            keys = [c["key"] for c in section["columns"]]
            for row in section["rows"]:
                if set(row) - set(keys):
                    raise ValueError(f"section {sid!r} has a row with keys outside its columns")
    json.dumps(document)  # must be plain JSON
