"""Clinical traffic outside the routine FHIR reads and writes (which `Organization.day_events`
generates inline): after-hours PHI reads between 22:00 and 05:00 local time, and break-glass
emergency access, a grant followed by a few reads of the same patient."""

from __future__ import annotations

from compliance_reports.demo.vocabulary import _FHIR_READS, _H, _JUSTIFICATIONS, _iso


class ClinicalTraffic:
    """Mixed into `Organization`, whose rng, principals, patients and helpers
    (`details`, `corr`, ...) it uses. Each method appends its events to `out` and returns
    how many it appended, so the day planner can keep to its budget."""

    def after_hours_read(self, t, out) -> int:
        r = self.rng
        x = r.random()
        if x < 0.6:
            p = r.choice(self.nurses)
        elif x < 0.85:
            p = r.choice(self.doctors)
        else:
            p = r.choice(self.curious)
        pid = self.patients[r.randrange(4000)]
        action, rtype, prefix, ok, lat0, span = r.choice(_FHIR_READS)
        rid = "Patient/" + pid if prefix is None else f"{prefix}{r.randrange(1000000, 9000000)}"
        det = self.details(p, {"patient_id": pid}, subject=pid)
        out.append((t, (p, action, rtype, rid, "success", ok, self.corr(), "PHI", "hipaa-6y",
                        "P7Y", lat0 + r.randrange(span), det)))
        return 1

    def emergency(self, t, end, left, out) -> int:
        r = self.rng
        p = r.choice(self.doctors + self.nurses[:10])
        pid = self.patients[r.randrange(4000)]
        justification = r.choice(_JUSTIFICATIONS)
        reads = min(r.randint(1, 3), left - 1)
        t = min(t, end - 1_000_000)
        corr = self.corr()
        expires = _iso(t + 4 * _H)
        det = self.details(p, {"break_glass": True, "justification": justification,
                               "patient_id": pid, "expires_at": expires},
                           subject=pid, legal_basis="vital_interests")
        out.append((t, (p, "emergency.access.grant", "Patient", "Patient/" + pid, "success",
                        "Break-glass access granted", corr, "PHI", "hipaa-6y", "P7Y",
                        20 + r.randrange(200), det)))
        for _ in range(max(reads, 0)):
            t += r.randint(20_000, 300_000)
            det = self.details(p, {"break_glass": True, "justification": justification,
                                   "patient_id": pid}, subject=pid, legal_basis="vital_interests")
            out.append((t, (p, "fhir.patient.read", "Patient", "Patient/" + pid, "success",
                            "Patient record viewed (break-glass)", corr, "PHI", "hipaa-6y", "P7Y",
                            8 + r.randrange(90), det)))
        return 1 + max(reads, 0)
