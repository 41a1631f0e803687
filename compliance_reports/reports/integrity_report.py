"""Integrity verification report: every row of the window re-hashed, the chain walked, the
organization's last checkpoint compared, a new signed checkpoint written once the report is
stored (see ``integrity``). A window without rows is NO_DATA, never VERIFIED; the window's
coverage (partial, long silences) is added by the builder as for every report type."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from compliance_reports.audit.integrity import BREAK_KINDS, BROKEN, KEY_ENV, NO_DATA
from compliance_reports.db.schema import audit_log
from compliance_reports.reports import document as rd
from compliance_reports.reports.common import (
    ReportContext,
    event_time,
    integrity_facts_section,
    scope_section,
)
from compliance_reports.reports.types import Body

c = audit_log.c


def _event(ctx: ReportContext, event_id: Any):
    try:
        ident = int(event_id)
    except (TypeError, ValueError):
        return None
    return ctx.conn.execute(
        select(c.id, c.timestamp, c.action, c.principal_id)
        .where(c.organization_id == ctx.org, c.id == ident)
    ).first()


def _checkpoint_items(prefix: str, cp: dict[str, Any] | None) -> list[tuple[str, Any]]:
    if not cp:
        return [(prefix, "none")]
    items = [(f"{prefix}: window end (UTC)", cp["window_end"]),
             (f"{prefix}: rows up to window end", cp["row_count"]),
             (f"{prefix}: last event", cp["last_event_id"]),
             (f"{prefix}: last hash", cp["last_hash"]),
             (f"{prefix}: key id", cp["key_id"])]
    if cp.get("id") is not None:
        items.insert(0, (f"{prefix}: id", cp["id"]))
    if "status" in cp:
        items.append((f"{prefix}: status", cp["status"]))
    return items


def build(ctx: ReportContext) -> Body:
    result = ctx.integrity
    sections = [scope_section(ctx), integrity_facts_section(ctx, "verdict")]
    first = result.first_break
    first_data = None
    if first is not None:
        row = _event(ctx, first.event_id)
        first_data = {
            **first.to_dict(),
            "event_time_utc": event_time(row.timestamp) if row else None,
            "event_action": row.action if row else None,
            "event_exists": row is not None,
        }
        sections.append(rd.facts("first_break", "First break", [
            ("Event", first.event_id),
            ("Kind", BREAK_KINDS.get(first.kind, first.kind)),
            ("Detail", first.detail),
            ("Event time (UTC)", first_data["event_time_utc"]),
            ("Event action", first_data["event_action"]),
        ]))
    breaks = [b.to_dict() for b in result.breaks]
    sections.append(rd.appendix(rd.table(
        "breaks", "Breaks found",
        [("event_id", "Event"), ("kind_title", "Kind"), ("detail", "Detail")],
        [{"event_id": b["event_id"], "kind_title": b["kind_title"], "detail": b["detail"]} for b in breaks],
        total_rows=result.mismatched + result.chain_breaks + result.unhashed
        + sum(1 for b in breaks if b["kind"] in ("tail_deleted", "rows_inserted", "checkpoint_forged")),
        note="The first 100 breaks in chain order are listed." if len(breaks) >= 100 else None,
    )))
    sections.append(rd.facts(
        "checkpoints", "Checkpoints",
        _checkpoint_items("Previous checkpoint", result.previous_checkpoint)
        + _checkpoint_items("Checkpoint written", result.checkpoint_written),
        description=(f"Checkpoints are signed with HMAC-SHA256 using the key in {KEY_ENV}; a "
                     "checkpoint whose signature does not verify is not trusted. The checkpoint "
                     "this report signs is stored as the last step of a successful run; none is "
                     "signed for a window without rows (NO_DATA)."),
    ))
    titles = {NO_DATA: "No data"}
    items = [
        rd.finding("critical" if p["level"] == BROKEN else "warning",
                   "integrity_" + p["level"].lower(), titles.get(p["level"], p["level"].capitalize()),
                   p["text"],
                   [first.event_id] if first is not None and first.event_id is not None
                   and p["level"] == result.verdict else [])
        for p in result.problems
    ]
    items += [rd.finding("info", "integrity_note", "Note", note, []) for note in result.notes]
    sections.append(rd.findings("findings", "Findings", items))
    sections.append(rd.text("method", "Method", [
        "Each row's hash is the SHA-256 of the source system's canonical string (action, "
        "organizationId, outcomeDescription, principalId, status, targetResourceId, "
        "targetResourceType, timestamp); each row's prev_hash must equal the hash of the "
        "organization's previous row in (timestamp, id) order, starting from the last row "
        "before the window.",
        "A changed row fails its own hash (content changed); a deleted or moved row breaks the "
        "link of the row after it (row missing or reordered); deleted rows at the end of the log "
        "are found by comparing with the last signed checkpoint.",
    ]))
    summary = [
        ("Verdict", result.verdict),
        ("Rows checked", result.rows),
        ("Verified", result.verified),
        ("Hash mismatches", result.mismatched),
        ("Chain breaks", result.chain_breaks),
        ("Rows without hash", result.unhashed),
    ]
    data = {**result.to_dict(), "first_break": first_data}
    return Body(summary=summary, sections=sections, data=data)
