"""GDPR traffic: consents given and withdrawn per scope and channel, and data-subject requests
whose completions are queued as future events (most within four weeks, some after more than
a month, some never) for `Organization.day_events` to release on their day."""

from __future__ import annotations

import heapq

from compliance_reports.demo.vocabulary import (
    _CONSENT_SCOPES,
    _DAY,
    _DSR_DONE,
    _DSR_TYPES,
    _ENC,
    _H,
    _PEOPLE,
    _iso,
)


class GdprTraffic:
    """Mixed into `Organization`, whose rng, principals, patients and helpers
    (`details`, `corr`, ...) it uses. Each method appends its events to `out` and returns
    how many it appended, so the day planner can keep to its budget."""

    def consent(self, t, out) -> int:
        r = self.rng
        p = "svc-patient-portal" if r.random() < 0.5 else r.choice(self.clerks + self.privacy)
        pid = self.patients[r.randrange(4000)]
        self.consent_counter += 1
        given = r.random() < 0.8
        scope = r.choice(_CONSENT_SCOPES)
        if r.random() < 0.15:
            outcome = f"Consent form {'signed' if given else 'revoked'} by {r.choice(_PEOPLE)}"
        else:
            outcome = f"Consent {'recorded' if given else 'withdrawn'} ({scope})"
        det = self.details(p, {"patient_id": pid, "scope": scope,
                               "channel": r.choice(["portal", "paper", "kiosk"])},
                           subject=pid, legal_basis="consent")
        out.append((t, (p, "consent.given" if given else "consent.withdrawn", "Consent",
                        f"Consent/c-{self.index:02d}{self.consent_counter:06d}", "success", outcome,
                        self.corr(), "CONFIDENTIAL", "gdpr-default", "P7Y",
                        15 + r.randrange(150), det)))
        return 1

    def dsr(self, t, end, out, forced_delay_days: int | None = None) -> int:
        r = self.rng
        kind = r.choice(_DSR_TYPES)
        self.dsr_counter += 1
        request_id = f"dsr-{self.org_id.removeprefix('org-')}-{self.dsr_counter:05d}"
        pid = self.patients[r.randrange(4000)]
        p = "svc-patient-portal" if r.random() < 0.6 else r.choice(self.privacy)
        gdpr = {"legal_basis": "legal_obligation", "data_subject_id": pid, "request_type": kind}
        corr = self.corr()
        det = _ENC({"request_id": request_id, "data_subject_id": pid,
                    "channel": "portal" if p.startswith("svc-") else "email",
                    "session_context": self.session(p)[1], "gdpr_context": gdpr})
        if r.random() < 0.2:
            outcome = f"Request received from {r.choice(_PEOPLE)}"
        else:
            outcome = f"{kind.capitalize()} request received"
        out.append((t, (p, f"dsr.{kind}.request", "DataSubjectRequest",
                        f"DataSubjectRequest/{request_id}", "success", outcome, corr,
                        "CONFIDENTIAL", "gdpr-default", "P7Y", 20 + r.randrange(200), det)))
        # Completion: most within 4 weeks, ~10% after more than a month, ~12% never.
        if forced_delay_days is not None:
            done = t + forced_delay_days * _DAY + r.randrange(_H, 6 * _H)
        else:
            x = r.random()
            if x < 0.12:
                return 1
            days = r.randint(31, 45) if x < 0.22 else r.randint(1, 28)
            done = t + days * _DAY + r.randrange(-2 * _H, 2 * _H)
        done = max(done, end)
        worker = r.choice(["svc-dsr-worker", *self.privacy])
        det = _ENC({"request_id": request_id, "data_subject_id": pid, "requested_at": _iso(t),
                    "session_context": self.new_session_dict(worker), "gdpr_context": gdpr})
        payload = (worker, f"dsr.{kind}.complete", "DataSubjectRequest",
                   f"DataSubjectRequest/{request_id}", "success", _DSR_DONE[kind], corr,
                   "CONFIDENTIAL", "gdpr-default", "P7Y", 100 + r.randrange(5000), det)
        self.seq += 1
        heapq.heappush(self.pending, (done, self.seq, payload))
        return 1
