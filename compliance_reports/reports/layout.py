"""Reading order of a report's sections: what a reviewer needs first comes first.

1. findings sections (rolled up one per rule, ``rollup``), most severe first within each; the
   report type's own findings before the coverage findings every type shares;
2. charts;
3. the analysis (scope, coverage, the type's tables and facts, integrity, method);
4. the attestation, which closes the main body;
5. appendices: sections marked ``appendix`` (event listings, the complete accounting of
   disclosures, raw tables), in the order the builder wrote them.

The order within each group is the builder's.
"""

from __future__ import annotations

from typing import Any

from compliance_reports.reports.rollup import roll_up

COVERAGE_FINDINGS = "coverage_findings"


def _group(section: dict[str, Any]) -> float:
    if section.get("appendix"):
        return 4
    kind = section.get("kind")
    if kind == "findings":
        return 0 if section.get("id") != COVERAGE_FINDINGS else 0.5
    if kind == "chart":
        return 1
    if kind == "attestation":
        return 3
    return 2


def arrange(sections: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Sections in reading order, each findings section rolled up (new dicts; the input is
    not changed)."""
    out = []
    for section in sections:
        if section.get("kind") == "findings":
            section = {**section, "findings": roll_up(section.get("findings") or [])}
        out.append(section)
    return sorted(out, key=_group)  # stable: the builder's order within each group
