"""HIPAA audit trail: 45 CFR 164.312(b) (audit controls) and 164.308(a)(1)(ii)(D)
(information system activity review).

ePHI access means events with ``data_classification = 'PHI'``; their action category comes from
``action_categories`` (phi_read, phi_write, disclosure, export, ...). Anomaly rules, each a
finding with evidence event ids. Every threshold means "at least N": a count equal to the
threshold is flagged.

- after-hours access: PHI events whose LOCAL time (report timezone) is at or after
  ``after_hours_start`` or before ``after_hours_end`` (or within [start, end) when start < end),
  plus whole Saturdays and Sundays when ``weekend_is_after_hours``. Method: Python computes the
  after-hours intervals of every local day touching the window as UTC instants
  (``periods.resolve_local``, so DST days are right: a 25-hour day's repeated hour is counted
  once, in the interval that covers it), merges and clips them to the window, and SQL counts the
  events inside them: OR-ed ``timestamp >= :a AND timestamp < :b`` predicates on SQLite, one
  ``width_bucket`` search over the bounds on PostgreSQL (``within``). No local-time
  arithmetic runs in the database, so SQLite and PostgreSQL agree. Equal start and end times
  mean no daily after-hours time (weekends still count when configured).
- bulk access, two rules: (a) a ``export`` category event whose ``details.record_count`` is at
  least ``bulk_access_threshold``; (b) a principal with at least ``bulk_access_threshold``
  ``phi_read`` events within any 60 minutes (a sliding window, not clock hours: see ``bursts``),
  reported with the start of its busiest window and the number of reads in it.
- a principal who touched at least ``distinct_patients_threshold`` distinct patients
  (``count(DISTINCT details.patient_id)`` over PHI events).
- repeated denied access: a principal with at least ``denied_access_threshold`` failed PHI events.
- repeated failed logins: a principal with at least ``failed_login_threshold`` failed events of
  the ``login`` category (MFA failures are counted apart and are not failed logins).
- the period's integrity result when it is not VERIFIED.

Authentication is counted per kind (``action_categories.AUTHENTICATION_KINDS``): logins
(success, failure, without outcome), MFA challenges (passed, failed), logouts, lockouts and other
``auth.*`` events, each its own figure. The accounting of disclosures (164.528) is never capped:
every disclosure of the window is in the document (the PDF moves a long one to an appendix).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Boolean, and_, case, false, func, literal, or_, select
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from compliance_reports.audit.action_categories import AUTHENTICATION_KINDS, UNCATEGORISED
from compliance_reports.db.schema import audit_log
from compliance_reports.periods import Window, resolve_local
from compliance_reports.reports import document as rd
from compliance_reports.reports.bursts import WINDOW, bursting_principals, busiest_windows
from compliance_reports.reports.common import (
    EVIDENCE_COLUMNS,
    EVIDENCE_LIMIT,
    FLAGGED_LIMIT,
    ReportContext,
    capped_note,
    category_title,
    event_time,
    evidence_table_rows,
    failures,
    int_or_zero,
    integrity_facts_section,
    integrity_summary,
    iso_utc,
    number,
    principal_label,
    resource_label,
    scope_section,
    sort_key,
    successes,
)
from compliance_reports.reports.types import Body

c = audit_log.c
PATIENT = c.details["patient_id"].as_string()
RECORD_COUNT = c.details["record_count"].as_float()


# ------------------------------------------------------------------------- after hours


def _hhmm(value: str) -> time:
    return time(int(value[:2]), int(value[3:5]))


def after_hours_intervals(
    window: Window, start: str, end: str, weekend_is_after_hours: bool
) -> list[tuple[datetime, datetime]]:
    """UTC intervals [a, b) of after-hours time inside the window, merged and sorted."""
    start_t, end_t = _hhmm(start), _hhmm(end)
    tz = window.timezone
    first = window.start_local.date() - timedelta(days=1)
    last = window.end_local.date()
    raw: list[tuple[datetime, datetime]] = []
    day = first
    while day <= last:
        if weekend_is_after_hours and day.weekday() >= 5:
            raw.append((_midnight(day, tz), _midnight(day + timedelta(days=1), tz)))
        if start_t != end_t:
            end_day = day + timedelta(days=1) if end_t < start_t else day
            raw.append((
                resolve_local(datetime.combine(day, start_t), tz),
                resolve_local(datetime.combine(end_day, end_t), tz),
            ))
        day += timedelta(days=1)
    clipped = sorted(
        (max(a, window.start_utc), min(b, window.end_utc))
        for a, b in raw
        if b > window.start_utc and a < window.end_utc
    )
    merged: list[tuple[datetime, datetime]] = []
    for a, b in clipped:
        if a >= b:
            continue
        if merged and a <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], b))
        else:
            merged.append((a, b))
    return merged


def _midnight(day: date, tz: str) -> datetime:
    return resolve_local(datetime.combine(day, time(0, 0)), tz)


class within(FunctionElement):
    """``timestamp`` inside one of the merged, sorted intervals given as their bounds
    ``a1, b1, a2, b2, ...`` (each interval half-open, [a, b)).

    OR-ed ranges on SQLite. On PostgreSQL one binary search per row: ``width_bucket`` counts
    the bounds at or before the timestamp, odd inside an interval (the bounds strictly
    increase: ``after_hours_intervals`` merges touching intervals and drops empty ones)."""

    type = Boolean()
    inherit_cache = True
    name = "within"


@compiles(within)
def _within_default(element, compiler, **kw):
    ts, *bounds = (compiler.process(e, **kw) for e in element.clauses)
    pairs = zip(bounds[::2], bounds[1::2])
    return "(" + " OR ".join(f"({ts} >= {a} AND {ts} < {b})" for a, b in pairs) + ")"


@compiles(within, "postgresql")
def _within_pg(element, compiler, **kw):
    ts, *bounds = (compiler.process(e, **kw) for e in element.clauses)
    return f"(mod(width_bucket({ts}, ARRAY[{', '.join(bounds)}]), 2) = 1)"


def in_intervals(intervals: list[tuple[datetime, datetime]]):
    if not intervals:
        return false()
    bounds = (literal(t, c.timestamp.type) for interval in intervals for t in interval)
    return within(c.timestamp, *bounds)


# ------------------------------------------------------------------------- helpers


def _recipient(details: dict | None) -> str | None:
    value = (details or {}).get("recipient")
    if isinstance(value, dict):
        name, org = value.get("name"), value.get("organization")
        if name and org:
            return f"{name} ({org})"
        return name or org
    return value if value is None else str(value)


def _detail(details: dict | None, key: str) -> Any:
    value = (details or {}).get(key)
    return value if value is None or isinstance(value, (str, int, float, bool)) else str(value)


def _principal_findings(
    ctx: ReportContext, rows: list[dict], total: int, evidence: dict, *, severity: str,
    code: str, title: str, detail: str,
) -> list[dict]:
    out = []
    for row in rows:
        who = principal_label(ctx.pseudo(row["key"]))
        out.append(rd.finding(severity, code, f"{title}: {who}",
                              detail.format(principal=who, value=number(row["value"])),
                              evidence.get(row["key"], []), subject=who,
                              measure=number(row["value"])))
    if total > len(rows):
        out.append(rd.finding("info", code + "_more", f"{title}: {total - len(rows)} more",
                              f"{total} principals meet this rule; the first {len(rows)} are listed.",
                              [], measure=total - len(rows)))
    return out


# ------------------------------------------------------------------------- build


def build(ctx: ReportContext) -> Body:
    opts = ctx.options
    top_n = opts.top_n
    phi = c.data_classification == "PHI"
    data: dict[str, Any] = {}
    anomalies: list[dict] = []
    intervals = after_hours_intervals(ctx.window, opts.after_hours_start, opts.after_hours_end,
                                      opts.weekend_is_after_hours)
    # Dozens of OR-ed time ranges, read here and by the after-hours chart: once per row.
    after = ctx.flag("after_hours", in_intervals(intervals))

    # --- ePHI access by category and by principal
    # One statement counts the PHI events per principal and category (a few rows per
    # principal): the category table, the principal table, the after-hours, denied access
    # and many-patients rules and the top-principals chart add them up. Distinct patients
    # need the events themselves: three DISTINCT statements, hashed rather than sorted.
    category = ctx.category_expr()
    cells = ctx.conn.execute(ctx.statement(lambda where: (
        select(c.principal_id, category.label("category"), func.count().label("events"),
               successes(audit_log).label("successes"), failures(audit_log).label("failures"),
               func.sum(_case01(after)).label("after_hours"))
        .where(*where).group_by(c.principal_id, category)), phi)).all()
    patients_by_category = _distinct_patients(ctx, phi, category)
    patients_by_principal = _distinct_patients(ctx, phi, c.principal_id)
    phi_patients = _distinct_patients(ctx, phi).get(None, 0)

    categories: dict[str, dict[str, Any]] = {}
    principals: dict[str | None, dict[str, Any]] = {}
    for cell in cells:
        cat = categories.setdefault(cell.category, {
            "category": cell.category, "title": category_title(cell.category), "events": 0,
            "successes": 0, "failures": 0, "principals": 0,
            "patients": patients_by_category.get(cell.category, 0)})
        who = principals.setdefault(cell.principal_id, {
            "key": cell.principal_id, "events": 0, "reads": 0, "writes": 0, "failures": 0,
            "patients": patients_by_principal.get(cell.principal_id, 0), "after_hours": 0})
        cat["events"] += cell.events
        cat["successes"] += int_or_zero(cell.successes)
        cat["failures"] += int_or_zero(cell.failures)
        cat["principals"] += cell.principal_id is not None  # as count(DISTINCT principal_id)
        who["events"] += cell.events
        who["reads"] += cell.events if cell.category == "phi_read" else 0
        who["writes"] += cell.events if cell.category == "phi_write" else 0
        who["failures"] += int_or_zero(cell.failures)
        who["after_hours"] += int_or_zero(cell.after_hours)
    order = {name: i for i, name in enumerate([*ctx.categories, UNCATEGORISED])}
    category_rows = sorted(categories.values(), key=lambda r: order.get(r["category"], len(order)))
    phi_total = sum(r["events"] for r in category_rows)
    per_principal = sorted(principals.values(), key=lambda r: (-r["events"], sort_key(r["key"])))
    n_principals = len(per_principal)
    ctx.chart_principals = per_principal
    by_principal = per_principal[:top_n]
    phi_principals = sum(1 for r in per_principal if r["key"] is not None)  # count(DISTINCT) skips NULL
    principal_rows = [
        {"principal_id": ctx.pseudo(r["key"]), "events": r["events"], "reads": r["reads"],
         "writes": r["writes"], "failures": r["failures"], "patients": r["patients"]}
        for r in by_principal
    ]
    data["phi_access"] = {"events": phi_total, "distinct_principals": phi_principals,
                          "distinct_patients": phi_patients, "by_category": category_rows,
                          "top_principals": principal_rows, "principals_total": n_principals}

    # --- authentication: each kind its own figure; failed logins are login failures only
    auth_kinds, failed_logins = _authentication_by_kind(ctx)
    logins, mfa = auth_kinds["login"], auth_kinds["mfa"]
    failed_login = and_(ctx.category("login"), c.status == "failure")
    auth_fail_principals = sum(1 for r in failed_logins if r["key"] is not None)  # as count(DISTINCT)
    flagged_logins, n_flagged_logins = _over_threshold(failed_logins, "failures",
                                                       opts.failed_login_threshold)
    login_evidence = ctx.evidence_by_principal([r["key"] for r in flagged_logins], failed_login)
    anomalies += _principal_findings(
        ctx, flagged_logins, n_flagged_logins, login_evidence, severity="warning",
        code="failed_logins", title="Repeated failed logins",
        detail=f"{{principal}} failed to log in {{value}} times (threshold: at least "
               f"{opts.failed_login_threshold}).")
    data["authentication"] = {
        "by_kind": auth_kinds, "failed_logins": logins["failure"],
        "principals_with_failed_logins": auth_fail_principals,
        "failed_login_threshold": opts.failed_login_threshold,
        "over_threshold": [{"principal_id": ctx.pseudo(r["key"]), "failures": r["value"]}
                           for r in flagged_logins],
        "over_threshold_total": n_flagged_logins,
    }

    # --- privileged and audit-configuration changes; emergency access
    changes_cond = or_(ctx.category("privileged_change"), ctx.category("audit_config_change"))
    change_rows, n_changes = ctx.event_list(changes_cond)
    change_table = evidence_table_rows(ctx, change_rows, extra=lambda r: {
        # the window's actions resolved once (every listed row's action is among them)
        "category": ctx.window_actions().get(r.action, UNCATEGORISED)})
    emergency_rows, n_emergency = ctx.event_list(ctx.category("emergency_access"))
    emergency_table = evidence_table_rows(ctx, emergency_rows, extra=lambda r: {
        "justification": _detail(r.details, "justification") or _detail(r.details, "reason")})
    data["privileged_changes"] = {"total": n_changes, "rows": change_table}
    data["emergency_access"] = {"total": n_emergency, "rows": emergency_table}

    # --- anomalies
    after_all = sorted(({"key": r["key"], "events": int_or_zero(r["after_hours"])}
                        for r in per_principal if int_or_zero(r["after_hours"])),
                       key=lambda r: (-r["events"], sort_key(r["key"])))
    n_after_principals = len(after_all)
    after_total = sum(r["events"] for r in after_all)
    after_by_principal = after_all[:top_n]
    after_ids = ctx.first_ids(phi, after, limit=EVIDENCE_LIMIT * 2)
    rule = (f"{opts.after_hours_start}-{opts.after_hours_end} local ({ctx.window.timezone})"
            + (", weekends" if opts.weekend_is_after_hours else ""))
    if after_total:
        top = ", ".join(f"{principal_label(ctx.pseudo(r['key']))} ({r['events']})"
                        for r in after_by_principal[:5])
        anomalies.append(rd.finding(
            "warning", "after_hours_access", "After-hours PHI access",
            f"{after_total} PHI events by {n_after_principals} principal(s) fell in after-hours "
            f"time ({rule}). Most: {top}.", after_ids))
    data["after_hours"] = {
        "rule": rule, "events": after_total, "principals": n_after_principals,
        "by_principal": [{"principal_id": ctx.pseudo(r["key"]), "events": r["events"]}
                         for r in after_by_principal],
        "intervals_utc": [[iso_utc(a), iso_utc(b)] for a, b in intervals],
    }

    export_bulk = and_(ctx.category("export"), RECORD_COUNT >= opts.bulk_access_threshold)
    bulk_rows, n_bulk = ctx.event_list(export_bulk, limit=FLAGGED_LIMIT)
    if n_bulk:
        anomalies.append(rd.finding(
            "warning", "bulk_export", "Bulk exports",
            f"{n_bulk} export(s) of at least {opts.bulk_access_threshold} records.",
            [r.id for r in bulk_rows[:EVIDENCE_LIMIT]]))
    bulk_export_table = evidence_table_rows(ctx, bulk_rows, extra=lambda r: {
        "record_count": _detail(r.details, "record_count")})

    reads = and_(phi, ctx.category("phi_read"))
    bursting = bursting_principals(ctx, reads, opts.bulk_access_threshold)
    bursts = busiest_windows(ctx, reads, bursting)[:FLAGGED_LIMIT]
    n_bursts = len(bursting)
    window_minutes = int(WINDOW.total_seconds() // 60)
    burst_rows = [
        {"principal_id": ctx.pseudo(b.principal), "window_start_utc": event_time(b.start),
         "window_start_local": ctx.local(b.start), "last_read_utc": event_time(b.last),
         "reads": b.events}
        for b in bursts
    ]
    for b in bursts[:EVIDENCE_LIMIT]:
        who_label = principal_label(ctx.pseudo(b.principal))
        anomalies.append(rd.finding(
            "warning", "bulk_read", f"Bulk PHI reads: {who_label}",
            f"{who_label} read PHI {b.events} times within {window_minutes} minutes, from "
            f"{event_time(b.start)} to {event_time(b.last)} UTC (window starting "
            f"{ctx.local(b.start)} local; threshold: at least {opts.bulk_access_threshold} PHI "
            f"reads within any {window_minutes} minutes).", b.event_ids, subject=who_label,
            measure=b.events))
    if n_bursts > EVIDENCE_LIMIT:
        anomalies.append(rd.finding(
            "info", "bulk_read_more", f"Bulk PHI reads: {n_bursts - EVIDENCE_LIMIT} more",
            f"{n_bursts} principals meet the rule; the first {EVIDENCE_LIMIT} are listed.", [],
            measure=n_bursts - EVIDENCE_LIMIT))
    data["bulk_access"] = {
        "threshold": opts.bulk_access_threshold,
        "exports": {"total": n_bulk, "rows": bulk_export_table},
        "window_reads": {"window_minutes": window_minutes, "total": n_bursts, "rows": burst_rows},
    }

    wide, n_wide = _over_threshold(per_principal, "patients", opts.distinct_patients_threshold)
    wide_evidence = ctx.evidence_by_principal([r["key"] for r in wide], phi)
    anomalies += _principal_findings(
        ctx, wide, n_wide, wide_evidence, severity="warning", code="many_patients",
        title="Many distinct patients",
        detail=f"{{principal}} accessed {{value}} distinct patients (threshold: at least "
               f"{opts.distinct_patients_threshold}).")
    data["distinct_patients"] = {
        "threshold": opts.distinct_patients_threshold, "total": n_wide,
        "principals": [{"principal_id": ctx.pseudo(r["key"]), "patients": r["value"]} for r in wide]}

    denied_cond = (phi, c.status == "failure")
    denied, n_denied = _over_threshold(per_principal, "failures", opts.denied_access_threshold)
    denied_evidence = ctx.evidence_by_principal([r["key"] for r in denied], *denied_cond)
    anomalies += _principal_findings(
        ctx, denied, n_denied, denied_evidence, severity="warning", code="denied_access",
        title="Repeated denied PHI access",
        detail=f"{{principal}} was denied access to PHI {{value}} times (threshold: at least "
               f"{opts.denied_access_threshold}).")
    data["denied_access"] = {
        "threshold": opts.denied_access_threshold, "total": n_denied,
        "principals": [{"principal_id": ctx.pseudo(r["key"]), "failures": r["value"]} for r in denied]}

    integrity = ctx.integrity
    if integrity.verdict != "VERIFIED":
        evidence = [integrity.first_break.event_id] if integrity.first_break else []
        anomalies.append(rd.finding(
            "critical" if integrity.verdict == "BROKEN" else "warning", "integrity",
            f"Audit log integrity: {integrity.verdict}", integrity.reason,
            [e for e in evidence if e is not None]))

    # --- accounting of disclosures: every one of them, never capped (164.528)
    disclosure_rows, n_disclosures = ctx.event_list(ctx.category("disclosure"), limit=None, columns=(
        c.id, c.timestamp, c.principal_id, c.action, c.target_resource_type, c.target_resource_id,
        c.status, c.details))
    disclosures = [
        {"event_id": r.id, "date": event_time(r.timestamp), "date_local": ctx.local(r.timestamp),
         "recipient": _recipient(r.details),
         "resource": resource_label(r.target_resource_type, ctx.pseudo(r.target_resource_id)),
         "patient_id": ctx.pseudo(_detail(r.details, "patient_id")),
         "purpose": _detail(r.details, "purpose"),
         "principal_id": ctx.pseudo(r.principal_id), "action": r.action, "status": r.status}
        for r in disclosure_rows
    ]
    data["disclosures"] = {"total": n_disclosures, "rows": disclosures}
    data["anomalies"] = anomalies
    data["integrity"] = integrity_summary(integrity)

    sections = [
        scope_section(ctx),
        rd.table(
            "phi_access_by_category", "ePHI access by category",
            [("category", "Category"), ("title", "Description"), ("events", "Events"),
             ("successes", "Successes"), ("failures", "Failures"), ("principals", "Principals"),
             ("patients", "Distinct patients")],
            category_rows,
            description="Events on data classified PHI, by action category (164.312(b)).",
        ),
        rd.table(
            "phi_access_by_principal", f"ePHI access by principal (top {top_n})",
            [("principal_id", "Principal"), ("events", "Events"), ("reads", "Reads"),
             ("writes", "Writes"), ("failures", "Failures"), ("patients", "Distinct patients")],
            principal_rows, total_rows=n_principals,
            note=(f"{n_principals} principals accessed PHI; the top {top_n} by events are shown."
                  if n_principals > top_n else None),
        ),
        rd.facts("authentication", "Authentication", [
            ("Successful logins", logins["success"]),
            ("Failed logins", logins["failure"]),
            ("Login attempts without outcome", logins["attempt"]),
            ("MFA challenges passed", mfa["success"]),
            ("MFA challenges failed", mfa["failure"]),
            ("Logouts", auth_kinds["logout"]["events"]),
            ("Account lockouts", auth_kinds["lockout"]["events"]),
            ("Other authentication events", auth_kinds["authentication"]["events"]),
            ("Principals with failed logins", auth_fail_principals),
            (f"Principals with at least {opts.failed_login_threshold} failed logins",
             n_flagged_logins),
        ], description=("Each kind is counted on its own, by action category: "
                        + "; ".join(f"{category_title(k)} ({', '.join(ctx.categories[k]) or 'none'})"
                                    for k in AUTHENTICATION_KINDS)
                        + ". Failed logins do not include failed MFA challenges.")),
        rd.appendix(rd.table(
            "privileged_changes", "Privileged and audit-configuration changes",
            [*EVIDENCE_COLUMNS, ("category", "Category")], change_table, total_rows=n_changes,
            note=capped_note(len(change_table), n_changes),
            description="164.308(a)(1)(ii)(D): administrative changes to access and to audit controls.",
        )),
        rd.appendix(rd.table(
            "emergency_access", "Emergency (break-glass) access",
            [*EVIDENCE_COLUMNS, ("justification", "Justification")], emergency_table,
            total_rows=n_emergency, note=capped_note(len(emergency_table), n_emergency),
        )),
        rd.findings(
            "anomalies", "Anomalies", anomalies,
            description=(f"Every threshold means at least N: a count equal to it is flagged. "
                         f"After hours: {rule}. Bulk: an export of at least "
                         f"{opts.bulk_access_threshold} records, or at least "
                         f"{opts.bulk_access_threshold} PHI reads by one principal within any "
                         f"{window_minutes} minutes (a sliding window, not clock hours). Many "
                         f"patients: at least {opts.distinct_patients_threshold} distinct patients. "
                         f"Denied access: at least {opts.denied_access_threshold} failed PHI events. "
                         f"Failed logins: at least {opts.failed_login_threshold} failed logins."),
        ),
        rd.appendix(rd.table(
            "bulk_exports", "Bulk exports",
            [*EVIDENCE_COLUMNS, ("record_count", "Records")], bulk_export_table, total_rows=n_bulk,
            note=capped_note(len(bulk_export_table), n_bulk),
        )),
        rd.table(
            "bulk_reads", f"Bulk PHI reads (any {window_minutes} minutes)",
            [("principal_id", "Principal"), ("window_start_utc", "Window start (UTC)"),
             ("window_start_local", "Window start (local)"), ("last_read_utc", "Last read (UTC)"),
             ("reads", "Reads")],
            burst_rows, total_rows=n_bursts,
            description=(f"Principals with at least {opts.bulk_access_threshold} PHI reads within "
                         f"{window_minutes} minutes; each with its busiest window."),
            note=(f"{n_bursts} principals meet the rule; the first {len(burst_rows)} are listed."
                  if n_bursts > len(burst_rows) else None),
        ),
        rd.appendix(rd.table(
            "disclosures", "Accounting of disclosures",
            [("event_id", "Event"), ("date", "Date (UTC)"), ("date_local", "Date (local)"),
             ("recipient", "Recipient"), ("resource", "Resource"), ("patient_id", "Patient"),
             ("purpose", "Purpose"), ("principal_id", "Disclosed by"), ("action", "Action"),
             ("status", "Status")],
            disclosures, complete=True,
            description=("45 CFR 164.528: every disclosure in the period, none left out."),
        )),
        integrity_facts_section(ctx),
        rd.attestation(
            "attestation", "Review and attestation",
            ("I have reviewed this audit trail, including the anomalies and the integrity result "
             "above, as part of the information system activity review required by 45 CFR "
             "164.308(a)(1)(ii)(D), and documented any follow-up actions."),
            ["Reviewer name", "Role", "Date", "Signature", "Follow-up actions"],
        ),
    ]
    summary = [
        ("PHI access events", phi_total),
        ("Principals accessing PHI", phi_principals),
        ("After-hours PHI access events", after_total),
        ("Failed logins", logins["failure"]),
        ("Anomaly findings", sum(1 for f in anomalies if f["severity"] != "info")),
        ("Disclosures", n_disclosures),
        ("Emergency access events", n_emergency),
        ("Integrity", integrity.verdict),
    ]
    return Body(summary=summary, sections=sections, data=data)


def _authentication_by_kind(ctx: ReportContext) -> tuple[dict[str, dict[str, int]], list[dict]]:
    """Events per authentication kind and status, and the failed logins per principal
    ({key, failures}), from one statement grouped by kind, status and principal."""
    kind = ctx.category_expr()
    out = {k: {"events": 0, "success": 0, "failure": 0, "attempt": 0} for k in AUTHENTICATION_KINDS}
    failed_logins = []
    stmt = ctx.statement(lambda where: (
        select(kind.label("kind"), c.status, c.principal_id, func.count().label("events"))
        .where(*where).group_by(kind, c.status, c.principal_id)), kind.in_(AUTHENTICATION_KINDS))
    for row in ctx.conn.execute(stmt):
        counts = out[row.kind]
        counts["events"] += row.events
        if row.status in counts:
            counts[row.status] += row.events
        if row.kind == "login" and row.status == "failure":
            failed_logins.append({"key": row.principal_id, "failures": row.events})
    return out, failed_logins


def _distinct_patients(ctx: ReportContext, condition, key=None) -> dict[Any, int]:
    """count(DISTINCT patient) of the matching events per ``key`` (all of them under None), as
    a count of DISTINCT (key, patient) rows: PostgreSQL hashes them instead of sorting every
    group's patients. A key without any patient is absent (0)."""
    keys = [key.label("key")] if key is not None else []

    def build(where):
        pairs = select(*keys, PATIENT.label("patient")).where(*where, PATIENT.is_not(None)).distinct().subquery()
        if key is None:
            return select(func.count()).select_from(pairs)
        return select(pairs.c.key, func.count()).group_by(pairs.c.key)

    rows = ctx.conn.execute(ctx.statement(build, condition)).all()
    return {None: rows[0][0]} if key is None else {k: n for k, n in rows}


def _over_threshold(rows: list[dict], measure: str, threshold: int) -> tuple[list[dict], int]:
    """A rule's principals from rows already grouped by principal (every rule's convention: a
    count equal to the threshold is flagged): the first ``FLAGGED_LIMIT`` {key, value} with
    ``measure`` at least ``threshold`` (value desc, then principal by bytes, NULL last), and how
    many there are."""
    flagged = sorted(({"key": r["key"], "value": int_or_zero(r[measure])} for r in rows
                      if int_or_zero(r[measure]) >= threshold),
                     key=lambda r: (-r["value"], sort_key(r["key"])))
    return flagged[:FLAGGED_LIMIT], len(flagged)


def _case01(condition):
    return case((condition, literal(1)), else_=literal(0))
