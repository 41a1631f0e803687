"""One finding per rule: the findings of a rule met by several principals or resources rolled
up into one, with a table of what it covers.

A builder writes one finding per principal (40 "Repeated failed logins: usr-N" cards); a reader
wants the rule once, its severity, and who meets it. Within a findings section, findings are
grouped by ``code``; a code with more than one finding becomes one finding:

- severity: the most severe of the group (the rule's severity);
- title: the finding's ``rule`` when it names one, else the part of the titles before ": "
  when they share it, else the first title;
- detail: how many principals or resources meet the rule, with the rule's threshold taken from
  the first detail ("(threshold: ...)") when it states one;
- subjects: a table of each one, its figure (``measure``), and its first evidence event ids;
  the "<code>_more" note of a capped list adds to ``total`` instead of being a finding;
- evidence_event_ids: the group's evidence, in order, without repeats.

A single finding stays as it is. Findings are ordered most severe first, stable otherwise.
"""

from __future__ import annotations

import re
from typing import Any

from compliance_reports.reports.document import SEVERITIES

MORE_SUFFIX = "_more"
SUBJECT_EVIDENCE = 5        # evidence ids shown per row of the subjects table
_THRESHOLD = re.compile(r"\((threshold: [^)]*)\)")


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity)


def _subject(item: dict[str, Any]) -> str:
    if item.get("subject") is not None:
        return str(item["subject"])
    title = item.get("title") or ""
    return title.split(": ", 1)[1] if ": " in title else title


def _rule_title(group: list[dict[str, Any]]) -> str:
    if group[0].get("rule"):
        return group[0]["rule"]
    heads = {(f.get("title") or "").split(": ", 1)[0] for f in group}
    return heads.pop() if len(heads) == 1 else group[0].get("title") or group[0]["code"]


def _rolled(group: list[dict[str, Any]], more: int) -> dict[str, Any]:
    severity = min((f["severity"] for f in group), key=_rank)
    total = len(group) + more
    with_measure = any(f.get("measure") is not None for f in group)
    columns = [{"key": "subject", "title": "Principal or resource"}]
    columns.append({"key": "measure", "title": "Figure"} if with_measure
                   else {"key": "detail", "title": "Detail"})
    columns.append({"key": "evidence", "title": "First evidence events"})
    rows = []
    evidence: list[Any] = []
    for item in group:
        ids = list(item.get("evidence_event_ids") or [])
        row = {"subject": _subject(item),
               "evidence": ", ".join(str(i) for i in ids[:SUBJECT_EVIDENCE])}
        if with_measure:
            row["measure"] = item.get("measure")
        else:
            row["detail"] = item.get("detail")
        rows.append(row)
        evidence += [i for i in ids if i not in evidence]
    threshold = _THRESHOLD.search(group[0].get("detail") or "")
    detail = f"{total} principals or resources meet this rule"
    detail += f" ({threshold.group(1)})." if threshold else "."
    if more:
        detail += f" The first {len(group)} are listed."
    return {
        "severity": severity, "code": group[0]["code"], "title": _rule_title(group),
        "detail": detail, "evidence_event_ids": evidence,
        "subjects": {"title": "Covered", "columns": columns, "rows": rows, "total": total},
    }


def roll_up(findings: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The findings of one section, one per rule (see the module doc)."""
    groups: dict[str, list[dict[str, Any]]] = {}
    more: dict[str, int] = {}
    order: list[str] = []
    for item in findings:
        code = item["code"]
        base = code[: -len(MORE_SUFFIX)] if code.endswith(MORE_SUFFIX) else None
        if base is not None and isinstance(item.get("measure"), int):
            more[base] = more.get(base, 0) + item["measure"]
            continue
        if code not in groups:
            groups[code] = []
            order.append(code)
        groups[code].append(item)
    out = []
    for code in order:
        group = groups[code]
        if len(group) == 1 and not more.get(code):
            out.append(group[0])
        else:
            out.append(_rolled(group, more.get(code, 0)))
    for base, extra in more.items():
        if base not in groups:  # a "more" note whose listed findings were filtered out
            out.append({"severity": "info", "code": base + MORE_SUFFIX, "title": base,
                        "detail": f"{extra} more meet this rule.", "evidence_event_ids": []})
    out.sort(key=lambda f: _rank(f["severity"]))
    return out
