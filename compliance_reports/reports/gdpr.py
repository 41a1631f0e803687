"""GDPR record of processing activities (Art. 30) with breach notification (Art. 33).

Event conventions read here (the demo seed writes them; a source system can be mapped to them
with ``options.action_categories``):

- personal data: ``data_classification`` PHI (special category, health: Art. 9) or CONFIDENTIAL;
  legal basis ``details.gdpr_context.legal_basis`` (missing or empty = a finding); data subject
  ``details.gdpr_context.data_subject_id``.
- data-subject requests: ``data_subject_request`` category; a request is received by an action
  ending ``.request``/``.received`` and completed by one ending ``.complete``/``.completed``
  (``dsr.erasure.request`` -> ``dsr.erasure.complete``); the two are matched on
  ``details.request_id``; the type is ``details.gdpr_context.request_type`` or else the middle
  part of the action. The deadline is the receipt instant plus ``dsr_deadline_days`` x 24 hours;
  open past the deadline = the deadline lies before the window end (received before ``window
  end - dsr_deadline_days``, at any time, not only in the window) and not completed before the
  window end: that query has the organization and the upper bound but deliberately no lower
  bound. A request whose deadline is exactly the window end is not yet overdue.
- consent: ``consent`` category; given = actions ending ``.given``/``.granted``, withdrawn =
  ending ``.withdrawn``/``.revoked``.
- transfers: ``transfer`` category, ``details.destination_country`` and ``details.mechanism``.
- breaches: ``breach`` category, ``details.breach_id``, ``details.became_aware_at`` and
  ``details.notified_at`` (ISO 8601; awareness defaults to the event time). The deadline is
  became_aware_at + ``breach_notification_hours`` (72). Late when notified_at is after the
  deadline, compared as instants (1 ms after is late; at the deadline is on time); not yet
  notified is overdue when the deadline lies before the window end, else pending. Hours to
  notify (one decimal) are shown for people; the verdict never comes from them, and how far past
  the deadline a breach is stands next to it (``deadlines.overdue_text``).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy import and_, exists, func, not_, or_, select

from compliance_reports.audit.action_categories import ascii_lower, pattern_condition
from compliance_reports.db.schema import audit_log
from compliance_reports.reports import document as rd
from compliance_reports.reports.common import (
    EVIDENCE_LIMIT,
    LIST_LIMIT,
    ReportContext,
    capped_note,
    distinct_count,
    event_time,
    integrity_facts_section,
    integrity_summary,
    iso_utc,
    number,
    scope_section,
    sort_key,
)
from compliance_reports.reports.deadlines import is_past, overdue_text
from compliance_reports.reports.types import Body

c = audit_log.c
DSR_TYPES = ("access", "rectification", "erasure", "portability", "objection", "restriction")
DSR_RECEIVED = ("*.request", "*.received")
DSR_COMPLETED = ("*.complete", "*.completed")
CONSENT_GIVEN = (".given", ".granted")
CONSENT_WITHDRAWN = (".withdrawn", ".revoked")
PERSONAL = ("PHI", "CONFIDENTIAL")


def legal_basis(table=audit_log):
    return func.nullif(table.c.details["gdpr_context"]["legal_basis"].as_string(), "")


def _subject(table=audit_log):
    return table.c.details["gdpr_context"]["data_subject_id"].as_string()


def request_id(table=audit_log):
    return table.c.details["request_id"].as_string()


def _request_type(table=audit_log):
    return table.c.details["gdpr_context"]["request_type"].as_string()


def _dsr_type(action: str | None, request_type: str | None) -> str:
    if request_type:
        return request_type
    parts = (action or "").split(".")
    return parts[1] if len(parts) >= 3 else "unspecified"


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _ordered_types(types) -> list[str]:
    known = [t for t in DSR_TYPES]
    extra = sorted(t for t in types if t not in DSR_TYPES)
    return known + extra


def build(ctx: ReportContext) -> Body:
    opts = ctx.options
    window = ctx.window
    findings: list[dict] = []
    data: dict[str, Any] = {}
    personal = c.data_classification.in_(PERSONAL)

    # --- processing by legal basis and by data category
    by_basis = ctx.grouped_multi([("legal_basis", legal_basis())], personal,
                                 measures=[("subjects", distinct_count(_subject()))])
    basis_rows = [{"legal_basis": r["legal_basis"] or "(missing)", "events": r["events"],
                   "data_subjects": r["subjects"]} for r in by_basis]
    missing = sum(r["events"] for r in by_basis if r["legal_basis"] is None)
    personal_total = sum(r["events"] for r in by_basis)
    if missing:
        findings.append(rd.finding(
            "warning", "missing_legal_basis", "Processing without a recorded legal basis",
            f"{missing} of {personal_total} personal-data processing events have no "
            "gdpr_context.legal_basis (Art. 6).",
            ctx.first_ids(personal, legal_basis().is_(None))))
    by_category = ctx.grouped_multi(
        [("data_classification", c.data_classification), ("resource_type", c.target_resource_type)],
        personal, measures=[("subjects", distinct_count(_subject()))])
    category_rows = [{
        "data_classification": r["data_classification"],
        "data_category": ("special category: health (Art. 9)" if r["data_classification"] == "PHI"
                          else "personal data"),
        "resource_type": r["resource_type"], "events": r["events"], "data_subjects": r["subjects"],
    } for r in by_category]
    data["processing"] = {"events": personal_total, "missing_legal_basis": missing,
                          "by_legal_basis": basis_rows, "by_data_category": category_rows}

    # --- data-subject requests
    dsr = ctx.category("data_subject_request", any_time=True)  # overdue requests reach before the window
    received = and_(dsr, pattern_condition(c.action, DSR_RECEIVED))
    completed = and_(dsr, pattern_condition(c.action, DSR_COMPLETED))
    counts: dict[str, dict[str, int]] = {}

    def tally(condition, column: str, **scope_kw) -> None:
        for r in ctx.grouped_multi([("action", c.action), ("request_type", _request_type())],
                                   condition, **scope_kw):
            kind = _dsr_type(r["action"], r["request_type"])
            counts.setdefault(kind, {"received": 0, "completed": 0, "overdue": 0})[column] += r["events"]

    tally(received, "received")
    tally(completed, "completed")

    cutoff = window.end_utc - timedelta(days=opts.dsr_deadline_days)
    done = audit_log.alias("done")
    completion = exists(
        select(done.c.id).where(
            done.c.organization_id == ctx.org,
            done.c.timestamp < window.end_utc,
            ctx.category("data_subject_request", table=done),
            pattern_condition(done.c.action, DSR_COMPLETED),
            request_id(done) == request_id(),
        )
    )
    overdue_cond = (received, request_id().is_not(None), not_(completion))
    tally(and_(*overdue_cond), "overdue", end=cutoff, lower_bound=False)
    overdue_rows, n_overdue = ctx.event_list(
        *overdue_cond, end=cutoff, lower_bound=False, limit=LIST_LIMIT,
    ) if any(v["overdue"] for v in counts.values()) else ([], 0)
    no_request_id = ctx.count(received, request_id().is_(None))
    dsr_rows = [{"request_type": kind, **counts.get(kind, {"received": 0, "completed": 0, "overdue": 0})}
                for kind in _ordered_types(counts)]
    deadline_span = timedelta(days=opts.dsr_deadline_days)
    overdue_table = [{
        "event_id": r.id, "request_id": (r.details or {}).get("request_id"),
        "request_type": _dsr_type(r.action, ((r.details or {}).get("gdpr_context") or {}).get("request_type")),
        "received_utc": event_time(r.timestamp),
        "deadline_utc": event_time(r.timestamp + deadline_span),
        "open_past_deadline": overdue_text(window.end_utc - (r.timestamp + deadline_span)),
    } for r in overdue_rows]
    if n_overdue:
        findings.append(rd.finding(
            "critical", "dsr_overdue", "Data-subject requests open past the deadline",
            f"{n_overdue} request(s) received before {iso_utc(cutoff)} were not completed by the "
            f"end of the period ({opts.dsr_deadline_days}-day deadline, Art. 12(3)).",
            [r["event_id"] for r in overdue_table[:EVIDENCE_LIMIT]]))
    if no_request_id:
        findings.append(rd.finding(
            "warning", "dsr_without_request_id", "Data-subject requests without request_id",
            f"{no_request_id} received request(s) carry no details.request_id, so their completion "
            "cannot be tracked.", ctx.first_ids(received, request_id().is_(None))))
    data["data_subject_requests"] = {
        "deadline_days": opts.dsr_deadline_days, "by_type": dsr_rows,
        "overdue": {"total": n_overdue, "rows": overdue_table}, "without_request_id": no_request_id,
    }

    # --- consent
    consent_rows, _ = ctx.grouped(c.action, ctx.category("consent"))
    consent_table = [{"action": r["key"], "events": r["events"]} for r in consent_rows]
    given = sum(r["events"] for r in consent_rows
                if ascii_lower(r["key"] or "").endswith(CONSENT_GIVEN))
    withdrawn = sum(r["events"] for r in consent_rows
                    if ascii_lower(r["key"] or "").endswith(CONSENT_WITHDRAWN))
    data["consent"] = {"given": given, "withdrawn": withdrawn, "by_action": consent_table}

    # --- cross-border transfers
    country = c.details["destination_country"].as_string()
    mechanism = c.details["mechanism"].as_string()
    transfers = ctx.grouped_multi(
        [("country", country), ("mechanism", mechanism)], ctx.category("transfer"),
        measures=[("records", func.sum(c.details["record_count"].as_float()))])
    transfer_table = [{"destination_country": r["country"] or "(missing)",
                       "mechanism": r["mechanism"] or "(missing)", "events": r["events"],
                       "records": number(r["records"])} for r in transfers]
    unclear = sum(r["events"] for r in transfers if not r["country"] or not r["mechanism"])
    if unclear:
        findings.append(rd.finding(
            "warning", "transfer_without_basis", "Transfers without destination or mechanism",
            f"{unclear} cross-border transfer(s) lack details.destination_country or "
            "details.mechanism (Chapter V safeguards).",
            ctx.first_ids(ctx.category("transfer"), or_(country.is_(None), mechanism.is_(None)))))
    by_country: dict[str, int] = {}
    for r in transfer_table:
        by_country[r["destination_country"]] = by_country.get(r["destination_country"], 0) + r["events"]
    data["transfers"] = {
        "events": sum(r["events"] for r in transfers),
        "by_country": [{"destination_country": k, "events": v}
                       for k, v in sorted(by_country.items(), key=lambda kv: (-kv[1], sort_key(kv[0])))],
        "by_country_and_mechanism": transfer_table,
    }

    # --- breaches and the 72-hour clock
    breach_rows, n_breach_events = ctx.event_list(ctx.category("breach"), limit=LIST_LIMIT)
    breaches: dict[str, dict[str, Any]] = {}
    for r in breach_rows:
        details = r.details or {}
        key = str(details.get("breach_id") or f"event-{r.id}")
        aware = _parse_time(details.get("became_aware_at")) or r.timestamp
        notified = _parse_time(details.get("notified_at"))
        b = breaches.setdefault(key, {"breach_id": key, "aware": aware, "notified": notified,
                                      "event_ids": [], "description": details.get("description"),
                                      "affected_subjects": details.get("affected_subjects")})
        b["aware"] = min(b["aware"], aware)
        if notified is not None:
            b["notified"] = notified if b["notified"] is None else min(b["notified"], notified)
        b["event_ids"].append(r.id)
    limit_h = opts.breach_notification_hours
    breach_table = []
    for b in sorted(breaches.values(), key=lambda b: (b["aware"], b["breach_id"])):
        deadline = b["aware"] + timedelta(hours=limit_h)
        past_by = None
        if b["notified"] is not None:
            hours = round((b["notified"] - b["aware"]).total_seconds() / 3600, 1)
            status = "late" if is_past(deadline, b["notified"]) else "on time"
            if status == "late":
                past_by = overdue_text(b["notified"] - deadline)
        else:
            hours = None
            overdue = is_past(deadline, window.end_utc)
            status = "not notified (overdue)" if overdue else "not notified (pending)"
            if overdue:
                past_by = overdue_text(window.end_utc - deadline)
        breach_table.append({
            "breach_id": b["breach_id"], "became_aware_at": iso_utc(b["aware"]),
            "notified_at": iso_utc(b["notified"]), "hours_to_notify": number(hours),
            "deadline": iso_utc(deadline), "status": status, "past_deadline": past_by,
            "affected_subjects": b["affected_subjects"] if isinstance(b["affected_subjects"], (int, float)) else None,
            "description": b["description"] if isinstance(b["description"], str) else None,
            "event_ids": ", ".join(str(i) for i in b["event_ids"]),
        })
        if status == "late":
            findings.append(rd.finding(
                "critical", "breach_notified_late", f"Breach {b['breach_id']} notified late",
                f"Notified at {iso_utc(b['notified'])}, {past_by} after the {limit_h}-hour deadline "
                f"({iso_utc(deadline)}); {number(hours)} hours after awareness (Art. 33(1)).",
                b["event_ids"][:EVIDENCE_LIMIT]))
        elif status.startswith("not notified"):
            findings.append(rd.finding(
                "critical" if "overdue" in status else "warning", "breach_not_notified",
                f"Breach {b['breach_id']} not yet notified",
                f"Aware since {iso_utc(b['aware'])}; the {limit_h}-hour deadline "
                + (f"passed at {iso_utc(deadline)}, {past_by} before the end of the period."
                   if "overdue" in status else f"ends at {iso_utc(deadline)}."),
                b["event_ids"][:EVIDENCE_LIMIT]))
    data["breaches"] = {"events": n_breach_events, "breaches": breach_table,
                        "late": sum(1 for b in breach_table if b["status"] == "late"),
                        "not_notified": sum(1 for b in breach_table if b["status"].startswith("not"))}
    data["findings"] = findings
    data["integrity"] = integrity_summary(ctx.integrity)

    sections = [
        scope_section(ctx),
        rd.table("processing_by_legal_basis", "Personal-data processing by legal basis (Art. 6)",
                 [("legal_basis", "Legal basis"), ("events", "Events"),
                  ("data_subjects", "Distinct data subjects")], basis_rows,
                 description="Events on PHI and CONFIDENTIAL data."),
        rd.table("processing_by_data_category", "Personal-data processing by data category",
                 [("data_category", "Data category"), ("data_classification", "Classification"),
                  ("resource_type", "Resource type"), ("events", "Events"),
                  ("data_subjects", "Distinct data subjects")], category_rows),
        rd.table("data_subject_requests", "Data-subject requests (Art. 15-21)",
                 [("request_type", "Type"), ("received", "Received in period"),
                  ("completed", "Completed in period"),
                  ("overdue", f"Open past the {opts.dsr_deadline_days}-day deadline")], dsr_rows),
        rd.appendix(rd.table("dsr_overdue", "Requests open past the deadline",
                 [("event_id", "Event"), ("request_id", "Request"), ("request_type", "Type"),
                  ("received_utc", "Received (UTC)"), ("deadline_utc", "Deadline (UTC)"),
                  ("open_past_deadline", "Open past the deadline at period end")],
                 overdue_table, total_rows=n_overdue,
                 note=capped_note(len(overdue_table), n_overdue),
                 description=(f"Deadline: received + {opts.dsr_deadline_days} x 24 hours; a "
                              "request is listed when its deadline lies before the end of the "
                              "period and no completion was recorded by then."))),
        rd.table("consent", "Consent given and withdrawn",
                 [("action", "Action"), ("events", "Events")], consent_table,
                 description=f"Given: {given}. Withdrawn: {withdrawn}."),
        rd.table("transfers", "Cross-border transfers (Chapter V)",
                 [("destination_country", "Destination country"), ("mechanism", "Mechanism"),
                  ("events", "Events"), ("records", "Records")], transfer_table),
        rd.table("breaches", "Personal-data breaches (Art. 33)",
                 [("breach_id", "Breach"), ("became_aware_at", "Aware (UTC)"),
                  ("notified_at", "Notified (UTC)"), ("hours_to_notify", "Hours to notify"),
                  ("deadline", "Deadline (UTC)"), ("status", "Status"),
                  ("past_deadline", "Past the deadline by"),
                  ("affected_subjects", "Data subjects"), ("description", "Description"),
                  ("event_ids", "Events")], breach_table,
                 note=capped_note(len(breach_rows), n_breach_events),
                 description=(f"Deadline: awareness + {limit_h} hours. A notification at the "
                              "deadline is on time, one after it is late (instants compared to "
                              "the microsecond); hours to notify are rounded for reading only.")),
        rd.findings("findings", "Findings", findings),
        integrity_facts_section(ctx),
        rd.attestation(
            "attestation", "Data protection officer review",
            ("I have reviewed this record of processing activities, the data-subject requests and "
             "the breach register above, and documented any follow-up actions."),
            ["Data protection officer", "Date", "Signature", "Follow-up actions"]),
    ]
    summary = [
        ("Personal-data processing events", personal_total),
        ("Without legal basis", missing),
        ("Data-subject requests received", sum(r["received"] for r in dsr_rows)),
        ("Requests open past deadline", n_overdue),
        ("Cross-border transfers", data["transfers"]["events"]),
        ("Breaches", len(breach_table)),
        ("Integrity", ctx.integrity.verdict),
    ]
    return Body(summary=summary, sections=sections, data=data)
