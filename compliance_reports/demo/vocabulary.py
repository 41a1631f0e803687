"""The vocabulary every kind of demo traffic is drawn from: the traffic mix (relative load by
local hour, units per category), FHIR actions, legal bases, people and recipients with non-ASCII
names, transfer destinations, user agents, break-glass justifications, breach descriptions,
data-subject request types, roles, permissions, audit settings, consent scopes and export
formats, plus the time and JSON helpers the traffic modules share. It makes no traffic itself.
"""

from __future__ import annotations

import json
from bisect import bisect_right
from datetime import date, datetime, timedelta, timezone
from itertools import accumulate, repeat

from compliance_reports.audit.hashing import js_json

_H = 3_600_000
_DAY = 86_400_000
_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_ENC = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode

# Relative load by local hour: ~92% of events between 07:00 and 19:00.
_DIURNAL = [3, 2, 2, 2, 2, 4, 10, 35, 70, 80, 80, 75, 60, 70, 75, 72, 65, 50, 35, 18, 10, 7, 5, 4]
_NIGHT_LOCAL_HOURS = (22, 23, 0, 1, 2, 3, 4)

(C_FHIR, C_AFTER_HOURS, C_LOGIN_OK, C_LOGIN_FAIL, C_BURST, C_LOGOUT, C_MFA, C_EXPORT,
 C_DISCLOSE, C_ADMIN, C_AUDIT_CFG, C_AUDIT_RET, C_EMERGENCY, C_CONSENT, C_DSR, C_TRANSFER,
 C_SYSTEM) = range(17)
# Units per 10,000 (a unit is one event, or a few for bursts and break-glass sessions).
_CATEGORY_WEIGHTS = [
    (C_FHIR, 6900), (C_AFTER_HOURS, 60), (C_LOGIN_OK, 800), (C_LOGIN_FAIL, 120), (C_BURST, 12),
    (C_LOGOUT, 400), (C_MFA, 300), (C_EXPORT, 50), (C_DISCLOSE, 100), (C_ADMIN, 80),
    (C_AUDIT_CFG, 6), (C_AUDIT_RET, 3), (C_EMERGENCY, 6), (C_CONSENT, 100), (C_DSR, 20),
    (C_TRANSFER, 30), (C_SYSTEM, 200),
]
# Cumulative once, so the day planner's `random.choices` does not re-add the weights every day.
_CUM_CATEGORY = list(accumulate(w for _, w in _CATEGORY_WEIGHTS))


def _choices_table(population, cum_weights: list[int]) -> list:
    """A lookup table for ``_draw``: what ``random.choices(population, cum_weights=...)`` picks
    for each integer part of ``random() * total``.

    `random.choices` picks ``population[bisect_right(cum_weights, random() * total, 0, n - 1)]``.
    With integer cumulative weights, ``cum <= x`` holds exactly when ``cum <= floor(x)``, so the
    pick depends only on floor(x): a table over 0..total (total itself for a product rounded
    up to it) gives the same picks from the same random numbers without a bisection each.
    """
    hi = len(population) - 1
    return [population[bisect_right(cum_weights, k, 0, hi)] for k in range(cum_weights[-1] + 1)]


def _draw(table: list, k: int, rand) -> list:
    """``rng.choices(population, cum_weights=..., k=k)`` through ``_choices_table``'s table;
    `rand` is the generator's bound ``random`` method, drawn once per pick as choices does."""
    total = len(table) - 1 + 0.0
    return [table[int(rand() * total)] for _ in repeat(None, k)]


_CATEGORY_TABLE = _choices_table([c for c, _ in _CATEGORY_WEIGHTS], _CUM_CATEGORY)

# action, resource type, id prefix (None: the patient), success outcome, latency base, span, weight
_FHIR_ACTIONS = [
    ("fhir.patient.read", "Patient", None, "Patient record viewed", 8, 90, 30),
    ("fhir.patient.update", "Patient", None, "Patient demographics updated", 25, 300, 4),
    ("fhir.observation.read", "Observation", "Observation/obs-", "Observations viewed", 6, 80, 20),
    ("fhir.observation.create", "Observation", "Observation/obs-", "Observation recorded", 20, 250, 10),
    ("fhir.encounter.read", "Encounter", "Encounter/enc-", "Encounter viewed", 6, 80, 12),
    ("fhir.medicationrequest.create", "MedicationRequest", "MedicationRequest/mr-",
     "Medication ordered", 30, 400, 5),
    ("fhir.diagnosticreport.read", "DiagnosticReport", "DiagnosticReport/dr-",
     "Diagnostic report viewed", 10, 150, 8),
    ("fhir.condition.read", "Condition", "Condition/cond-", "Problem list viewed", 6, 80, 8),
]
_FHIR_EXPANDED = [a[:6] for a in _FHIR_ACTIONS for _ in range(a[6])]
_FHIR_READS = [a[:6] for a in _FHIR_ACTIONS if a[0] in ("fhir.patient.read", "fhir.observation.read")]

# Weighted, with None (legal basis missing) on ~5% of personal-data events.
_LEGAL_BASIS_EXPANDED = (
    ["contract"] * 29 + ["legal_obligation"] * 19 + ["vital_interests"] * 10 + ["public_task"] * 14
    + ["consent"] * 14 + ["legitimate_interests"] * 9 + [None] * 5
)

_TRANSFER_BASES = ["contract"] * 8 + ["legal_obligation"] * 4 + ["legitimate_interests"] * 4 + \
    ["consent"] * 3 + [None]

# Names with non-ASCII characters (and one with quotes) exercise the hash's JSON rules.
_PEOPLE = [
    "Zoë Ångström", "Δημήτρης Παπαδόπουλος", "Юлия Смирнова", "José Müller", "Søren Kierkegård",
    "Łucja Wąsowska", "François Lefèvre", "Ayşe Yılmaz", "李伟", "Nguyễn Thị Hoa",
    'Anna "Annie" Berg', "Mary O'Connor", "John Smith", "Priya Raman",
]
# name, organization, type, purpose
_RECIPIENTS = [
    ("Dr. Zoë Ångström", "Karolinska Universitetssjukhuset", "provider", "treatment"),
    ("Δημήτρης Παπαδόπουλος", "Athens Medical Group", "provider", "treatment"),
    ("Юлия Смирнова", "Baltic Research Institute", "researcher", "research"),
    ("Claims Unit", "BlueRiver Health Insurance", "payer", "payment"),
    ("Billing Partner", "MedBill Solutions LLC", "business_associate", "operations"),
    ("Det. Sgt. Rachel Owens", "Metropolitan Police", "law_enforcement", "legal"),
    ("Surveillance Team", "State Department of Public Health", "public_health_authority",
     "public_health"),
    ("Dr. José Müller", "Clínica São Lucas", "provider", "treatment"),
    ("Records Office", "Hartwell & Finch LLP", "legal_counsel", "legal"),
    ("Dr. Aiko Tanaka", "Kyoto Genomics Consortium", "researcher", "research"),
    ("Quality Team", "Regional Health Authority", "public_health_authority", "operations"),
    ("Dr. Priya Raman", "Apollo Clinics", "provider", "treatment"),
]
# country, mechanisms to draw from, receiving organization
_TRANSFER_DESTINATIONS = [
    ("US", ("SCC", "SCC", "adequacy"), "CloudMed Analytics Inc."),
    ("IN", ("SCC", "BCR"), "Sanjeevani Data Services Pvt Ltd"),
    ("CH", ("adequacy",), "Helvetia Health Labs AG"),
    ("GB", ("adequacy",), "NHS Digital Partner Ltd"),
    ("BR", ("SCC",), "Clínica São Lucas"),
    ("JP", ("adequacy", "SCC"), "Kyoto Genomics Consortium"),
    ("CA", ("adequacy",), "Maple Imaging Corp."),
]
_USER_AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0",
    "Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Mobile/15E148",
    "EpicHyperspace/10.2 (Windows NT 10.0)",
    "ClinicalWorkstation/4.8.1",
]
_SERVICE_AGENT = "compliance-etl/2.3 (python-requests/2.32)"
_JUSTIFICATIONS = [
    "Unconscious patient in ED, no prior care relationship",
    "Cardiac arrest: immediate access to medication history required",
    "Patient transferred at night from an external facility",
    "Psychiatric emergency; chart needed for current prescriptions",
    "Trauma team activation; allergies unknown",
]
_BREACH_DESCRIPTIONS = [
    "Misdirected fax containing laboratory results",
    "Lost unencrypted laptop with discharge summaries",
    "Phishing compromise of a clinician mailbox",
    "Unauthorized chart access by a former employee",
    "Misconfigured storage bucket exposed imaging reports",
    "Paper records left in a public waiting area",
]
_DSR_TYPES = ["access"] * 35 + ["erasure"] * 20 + ["rectification"] * 15 + ["portability"] * 10 + \
    ["objection"] * 10 + ["restriction"] * 10
_DSR_DONE = {
    "access": "Subject access request fulfilled",
    "erasure": "Personal data erased",
    "rectification": "Personal data rectified",
    "portability": "Data package delivered to the data subject",
    "objection": "Processing stopped after objection",
    "restriction": "Processing restricted",
}
_ROLES = ["clinician", "nurse", "registration", "billing", "auditor", "admin", "research-reader"]
_PERMISSIONS = ["fhir:Patient.read", "fhir:Observation.write", "export:bulk", "audit:read",
                "consent:manage", "dsr:process", "fhir:MedicationRequest.write"]
_AUDIT_SETTINGS = [
    ("phi_read_logging", "enabled", "enabled-with-fields"), ("export_alerts", "off", "on"),
    ("failed_login_alert_threshold", "10", "5"), ("log_level", "info", "debug"),
    ("siem_forwarding", "disabled", "enabled"),
]
_CONSENT_SCOPES = ["treatment", "data-sharing", "research", "marketing", "telehealth"]
_EXPORT_FORMATS = ["ndjson", "csv", "fhir-bulk-ndjson", "pdf", "xlsx"]

# "MM:SS" for each second of an hour and "mmm" for each millisecond.
_MMSS = [f"{s // 60:02d}:{s % 60:02d}" for s in range(3600)]
_MS3 = [f"{m:03d}" for m in range(1000)]


class _JsonCache(dict):
    """value -> JSON as the row hash writes it; None and "" are null (hashed columns only)."""

    def __missing__(self, key):
        value = js_json(key)
        if len(self) < 200_000:
            self[key] = value
        return value


def _iso(ms: int) -> str:
    ts = _EPOCH + timedelta(milliseconds=ms)
    return ts.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ts.microsecond // 1000:03d}Z"


def _day_ms(day: date) -> int:
    return (day - date(1970, 1, 1)).days * _DAY
