"""Breach records: about one per 30 days per organization, each with when the organization
became aware and when it notified, some more than 72 hours apart."""

from __future__ import annotations

from compliance_reports.demo.vocabulary import _BREACH_DESCRIPTIONS, _H, _iso


class BreachTraffic:
    """Mixed into `Organization`, whose rng, principals, patients and helpers
    (`details`, `corr`, ...) it uses. Each method appends its events to `out` and returns
    how many it appended, so the day planner can keep to its budget."""

    def breach(self, t, end, late, out) -> int:
        r = self.rng
        self.breach_counter += 1
        breach_id = f"br-{self.org_id.removeprefix('org-')}-{self.breach_counter:03d}"
        delay_h = r.uniform(80, 200) if late else r.uniform(6, 70)
        notified = t - r.randrange(0, _H)
        aware = notified - int(delay_h * _H)
        p = self.privacy[0]
        affected = r.choice([1, 3, 12, 45, 230, 1800])
        det = self.details(p, {
            "breach_id": breach_id, "became_aware_at": _iso(aware), "notified_at": _iso(notified),
            "affected_subjects": affected, "description": r.choice(_BREACH_DESCRIPTIONS),
        }, legal_basis="legal_obligation")
        out.append((t, (p, "security.breach.record", "Breach", f"Breach/{breach_id}", "success",
                        f"Breach {breach_id} recorded ({affected} data subjects)", self.corr(),
                        "CONFIDENTIAL", "gdpr-default", "P7Y", 50 + r.randrange(300), det)))
        return 1
