"""Data leaving the organization: bulk and single-patient exports, PHI disclosures and record
shares to a named recipient for a purpose, and cross-border transfers of data sets with a
transfer mechanism (SCC, BCR, adequacy) and sometimes no legal basis."""

from __future__ import annotations

from compliance_reports.demo.vocabulary import (
    _EXPORT_FORMATS,
    _RECIPIENTS,
    _TRANSFER_BASES,
    _TRANSFER_DESTINATIONS,
)


class DisclosureTraffic:
    """Mixed into `Organization`, whose rng, principals, patients and helpers
    (`details`, `corr`, ...) it uses. Each method appends its events to `out` and returns
    how many it appended, so the day planner can keep to its budget."""

    def export(self, t, out) -> int:
        r = self.rng
        p = r.choice(["svc-etl", "svc-reporting", *self.admins, *self.privacy, *self.doctors[:3]])
        fmt = r.choice(_EXPORT_FORMATS)
        if r.random() < 0.7:
            n = r.randint(500, 20_000)
            rtype, rid, extra = "Group", f"Group/cohort-{r.randrange(1, 60):03d}", {}
        else:
            n = r.randint(1, 60)
            pid = self.patients[r.randrange(4000)]
            rtype, rid, extra = "Patient", "Patient/" + pid, {"patient_id": pid}
        x = r.random()
        if x < 0.95:
            status, outcome = "success", f"Exported {n} records as {fmt}"
        elif x < 0.98:
            status, outcome = "failure", "access denied"
        else:
            status, outcome = "attempt", "Export queued"
        det = self.details(p, {"record_count": n, "format": fmt, "bulk": n >= 500, **extra},
                           subject=extra.get("patient_id"))
        out.append((t, (p, "data.export", rtype, rid, status, outcome, self.corr(), "PHI",
                        "hipaa-6y", "P7Y", 500 + r.randrange(30_000), det)))
        return 1

    def disclosure(self, t, out) -> int:
        r = self.rng
        p = r.choice([*self.doctors, *self.privacy, *self.privacy, *self.clerks[:4]])
        name, org, rtype, purpose = r.choice(_RECIPIENTS)
        pid = self.patients[r.randrange(4000)]
        action = "phi.disclosure" if r.random() < 0.6 else "record.share"
        det = self.details(p, {
            "recipient": {"name": name, "organization": org, "type": rtype},
            "purpose": purpose, "patient_id": pid,
        }, subject=pid)
        out.append((t, (p, action, "Patient", "Patient/" + pid, "success",
                        f"Disclosed to {name} ({org}) for {purpose}", self.corr(), "PHI",
                        "hipaa-6y", "P7Y", 20 + r.randrange(400), det)))
        return 1

    def transfer(self, t, out) -> int:
        r = self.rng
        p = r.choice(["svc-etl", "svc-backup", "svc-etl", *self.admins, *self.privacy])
        country, mechanisms, recipient_org = r.choice(_TRANSFER_DESTINATIONS)
        mechanism = r.choice(mechanisms)
        phi = r.random() < 0.4
        dataset = r.choice(["lab-results", "imaging-metadata", "billing-claims", "research-cohort",
                            "backup-snapshot"])
        n = r.randint(50, 50_000)
        det = self.details(p, {
            "destination_country": country, "mechanism": mechanism,
            "recipient": {"name": "Data Protection Office", "organization": recipient_org,
                          "type": "processor"},
            "record_count": n, "dataset": dataset,
        }, legal_basis=_TRANSFER_BASES[int(r.random() * len(_TRANSFER_BASES))])
        out.append((t, (p, "data.transfer.cross_border", "Dataset", f"Dataset/{dataset}", "success",
                        f"Transferred {n} records to {country} under {mechanism}", self.corr(),
                        "PHI" if phi else "CONFIDENTIAL", "hipaa-6y" if phi else "gdpr-default",
                        "P7Y", 1000 + r.randrange(60_000), det)))
        return 1
