"""Deterministic demo audit traffic of a healthcare SaaS, inserted into `audit_log`.

Plain Python (no Dagster). The same `SeedOptions` always produce the same rows and hashes:
every random choice comes from a `random.Random` derived from the seed and the organization,
and the only use of the clock is `end_date=None` meaning "today (UTC)".

What one organization gets each UTC day, `events_per_day` events in total, spread with a
diurnal load in the organization's own time zone (mostly 07:00-19:00 local):
FHIR reads and writes (PHI, some "access denied"), logins with bursts of failures, logouts and
MFA challenges, bulk exports, disclosures and shares with a recipient and purpose, admin and
audit-configuration changes, break-glass access, after-hours PHI reads (22:00-05:00 local),
consents, data-subject requests with their completions days later (some never, some after more
than a month), cross-border transfers, and about one recorded breach per 30 days (some notified
more than 72 h after awareness). Two "curious" principals per organization read far more
distinct patients than their colleagues.

Every row carries `hash = row_hash(row)` and `prev_hash` = the hash of the previous row of its
organization in (timestamp, id) order. Rows are inserted in chain order, so ids ascend with it
even where two timestamps are equal.

Re-seeding rule: seeding appends. For an organization that already has rows, the new rows chain
from its newest existing row, which is only sound when every new row is later than that row; so
seeding is refused with a ValueError (before anything is written) when the seeded range starts at
or before an organization's newest existing event. Seeding later days onto an earlier seed works.
Rows are committed in batches of `batch_size`; a failure part-way leaves the committed batches.
"""

from __future__ import annotations

import hashlib
import heapq
import json
import random
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from itertools import islice
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, func, select, update

from compliance_reports.db.schema import audit_log
from compliance_reports.audit.hashing import HASH_ALGORITHM, js_json

__all__ = [
    "DEMO_ORGANIZATIONS",
    "INSERT_COLUMNS",
    "SeedOptions",
    "SeedResult",
    "demo_organizations",
    "generate_events",
    "seed_audit_log",
    "tamper_rows",
    "text_progress",
]

# (organization_id, display name, IANA time zone)
DEMO_ORGANIZATIONS: list[tuple[str, str, str]] = [
    ("org-stmarys", "St Mary's Hospital", "America/New_York"),
    ("org-nordklinik", "Nordklinik Berlin", "Europe/Berlin"),
    ("org-harbourview", "Harbourview Health", "Australia/Sydney"),
    ("org-lakeside", "Lakeside Family Clinic", "America/Los_Angeles"),
    ("org-sanjeevani", "Sanjeevani Hospital Pune", "Asia/Kolkata"),
]
_EXTRA_TIMEZONES = [
    "UTC", "America/Chicago", "Asia/Tokyo", "Europe/London", "America/Sao_Paulo",
    "Africa/Johannesburg", "Europe/Madrid", "Pacific/Auckland",
]

# Column order of every generated row (all audit_log columns except the database-assigned id).
INSERT_COLUMNS: tuple[str, ...] = (
    "timestamp", "ttl", "principal_id", "organization_id", "action", "target_resource_type",
    "target_resource_id", "status", "outcome_description", "hash", "hash_algorithm",
    "event_version", "correlation_id", "data_classification", "retention_policy",
    "processing_latency", "archived_at", "details", "prev_hash",
)
_QUOTED_COLUMNS = ", ".join(f'"{c}"' for c in INSERT_COLUMNS)
EVENT_VERSION = "1.0"


@dataclass(frozen=True)
class SeedOptions:
    orgs: int = 3
    days: int = 35
    events_per_day: int = 2000  # per organization
    seed: int = 42
    tamper: int = 0
    end_date: date | None = None  # last UTC day seeded; None -> today (UTC)
    batch_size: int = 10_000

    def __post_init__(self) -> None:
        for name in ("orgs", "days", "events_per_day", "batch_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not isinstance(self.tamper, int) or self.tamper < 0:
            raise ValueError(f"tamper must be a non-negative integer, got {self.tamper!r}")
        if self.tamper > self.total_rows:
            raise ValueError(f"tamper ({self.tamper}) exceeds the number of seeded rows ({self.total_rows})")
        if self.end_date is not None and (
            not isinstance(self.end_date, date) or isinstance(self.end_date, datetime)
        ):
            raise ValueError(f"end_date must be a date, got {self.end_date!r}")

    @property
    def total_rows(self) -> int:
        return self.orgs * self.days * self.events_per_day

    def day_range(self) -> tuple[date, date]:
        """(first, last) UTC day seeded."""
        last = self.end_date or datetime.now(timezone.utc).date()
        return last - timedelta(days=self.days - 1), last


@dataclass
class SeedResult:
    rows: int
    organizations: list[str]
    seconds: float
    rows_per_second: float
    tampered_ids: list[int] = field(default_factory=list)
    first_timestamp: datetime | None = None
    last_timestamp: datetime | None = None


def demo_organizations(n: int) -> list[tuple[str, str, str]]:
    """The first `n` demo organizations; beyond the named ones, `org-demo-1`, `org-demo-2`..."""
    orgs = list(DEMO_ORGANIZATIONS[:n])
    for i in range(1, n - len(DEMO_ORGANIZATIONS) + 1):
        tz = _EXTRA_TIMEZONES[(i - 1) % len(_EXTRA_TIMEZONES)]
        orgs.append((f"org-demo-{i}", f"Demo Organization {i}", tz))
    return orgs


# ------------------------------------------------------------------ content pools

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


# ------------------------------------------------------------------ per-organization model


class _Org:
    """One organization's principals, patients, sessions and pending (future) events."""

    def __init__(self, index: int, org_id: str, tz_name: str, seed: int, days: int) -> None:
        self.index = index
        self.org_id = org_id
        self.tz = ZoneInfo(tz_name)
        self.days = days
        self.rng = r = random.Random(f"{seed}:{org_id}")
        self.seq = 0
        self.pending: list[tuple[int, int, tuple]] = []  # (ms, seq, payload)
        self.sessions: dict[str, tuple[str, dict]] = {}

        self.patients = [f"p-{n:06d}" for n in range(1, 4001)]
        doctors = [f"usr-dr-{n:03d}" for n in range(1, 15)]
        nurses = [f"usr-nurse-{n:03d}" for n in range(1, 37)]
        clerks = [f"usr-clerk-{n:03d}" for n in range(1, 11)]
        self.doctors, self.nurses, self.clerks = doctors, nurses, clerks
        self.admins = [f"usr-admin-{n:03d}" for n in range(1, 4)]
        self.privacy = ["usr-privacy-001", "usr-privacy-002"]
        self.services = ["svc-etl", "svc-reporting", "svc-backup", "svc-patient-portal",
                         "svc-dsr-worker", "svc-monitor"]
        self.curious = [r.choice(nurses), r.choice(clerks)]
        self.humans = doctors + nurses + clerks + self.admins + self.privacy
        self.home_ip = {
            p: f"10.{index % 250}.{1 + i // 250}.{1 + i % 250}" for i, p in enumerate(self.humans)
        }
        # Clinical users see a panel of 30 patients (and rarely anyone else); the curious
        # principals browse the whole patient list, and are refused more often.
        clinical = []
        for p in doctors:
            clinical += [(p, r.sample(self.patients, 30))] * 3
        for p in nurses + clerks:
            clinical += [(p, None if p in self.curious else r.sample(self.patients, 30))] * 2
        for p in self.curious:
            clinical += [(p, None)] * 4  # six times a colleague's share in total
        self.clinical = clinical
        self.dsr_counter = 0
        self.consent_counter = 0
        self.breach_counter = 0
        # About one breach per 30 days, one in each block of the range; alternate late ones.
        n_breaches = max(1, round(days / 30))
        block = days / n_breaches
        self.breach_days: dict[int, bool] = {}
        for b in range(n_breaches):
            lo = int(b * block)
            hi = max(lo, int((b + 1) * block) - 1)
            self.breach_days[r.randint(lo, hi)] = (index + b) % 2 == 0

    # -- helpers

    def corr(self) -> str:
        h = "%032x" % self.rng.getrandbits(128)
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def session(self, principal: str) -> tuple[str, dict]:
        s = self.sessions.get(principal)
        if s is None:
            s = self.new_session(principal)
        return s

    def new_session(self, principal: str, external: bool = False) -> tuple[str, dict]:
        r = self.rng
        if principal.startswith("svc-"):
            ip, ua = f"10.{self.index % 250}.200.{10 + len(principal)}", _SERVICE_AGENT
        else:
            if external or r.random() < 0.15 or principal not in self.home_ip:
                ip = f"198.51.100.{r.randrange(1, 255)}"
            else:
                ip = self.home_ip[principal]
            ua = _USER_AGENTS[int(r.random() * len(_USER_AGENTS))]
        d = {"ip_address": ip, "user_agent": ua, "session_id": "s-%016x" % r.getrandbits(64)}
        s = (_ENC(d), d)
        self.sessions[principal] = s
        return s

    def anonymous_session(self, principal: str, external: bool) -> dict:
        """The pre-login session of a failed login (not the principal's session of the day)."""
        saved = self.sessions.get(principal)
        _, d = self.new_session(principal, external=external)
        if saved is None:
            del self.sessions[principal]
        else:
            self.sessions[principal] = saved
        return {**d, "session_id": "anon-" + d["session_id"][2:]}

    def legal_basis(self) -> str | None:
        return _LEGAL_BASIS_EXPANDED[int(self.rng.random() * len(_LEGAL_BASIS_EXPANDED))]

    def details(self, principal: str, extra: dict, subject: str | None = None,
                legal_basis: str | None | bool = True) -> str:
        """JSON details: extra, session_context and (for personal data) gdpr_context."""
        d = dict(extra)
        d["session_context"] = self.session(principal)[1]
        if legal_basis is not False:
            g = {}
            lb = self.legal_basis() if legal_basis is True else legal_basis
            if lb:
                g["legal_basis"] = lb
            if subject:
                g["data_subject_id"] = subject
            d["gdpr_context"] = g
        return _ENC(d)

    # -- one day

    def day_events(self, day_index: int, day: date, budget: int) -> list[tuple[int, tuple]]:
        r = self.rng
        rand = r.random
        start = _day_ms(day)
        end = start + _DAY
        self.sessions.clear()

        # Hour weights of this UTC day from the local hour at each hour's midpoint.
        base = datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        local_hours = [(base + timedelta(minutes=60 * u + 30)).astimezone(self.tz).hour
                       for u in range(24)]
        cum, acc = [], 0
        for lh in local_hours:
            acc += _DIURNAL[lh]
            cum.append(acc)
        night = [u for u, lh in enumerate(local_hours) if lh in _NIGHT_LOCAL_HOURS] or [0]

        out: list[tuple[int, tuple]] = []
        pending = self.pending
        while pending and pending[0][0] < end and len(out) < budget:
            ms, _, payload = heapq.heappop(pending)
            out.append((ms, payload))
        while pending and pending[0][0] < end:  # more completions than the day holds: dropped
            heapq.heappop(pending)
        left = budget - len(out)
        if left <= 0:
            out.sort(key=_first)
            return out

        def business_time() -> int:
            return start + r.choices(range(24), cum_weights=cum)[0] * _H + int(rand() * _H)

        if day_index in self.breach_days and left > 0:
            left -= self.breach(business_time(), end, self.breach_days[day_index], out)
        if day_index == 0 and self.days >= 33 and left > 0:
            # A request answered after more than a month, so DSR deadlines have something to flag.
            left -= self.dsr(business_time(), end, out, forced_delay_days=min(34, self.days - 1) - 1)

        hours = r.choices(range(24), cum_weights=cum, k=max(left, 0))
        cats = r.choices([c for c, _ in _CATEGORY_WEIGHTS],
                         cum_weights=_CUM_CATEGORY, k=max(left, 0))
        clinical = self.clinical
        n_clinical = len(clinical)
        sessions = self.sessions
        corr = self.corr
        getrandbits = r.getrandbits
        lb_list = _LEGAL_BASIS_EXPANDED
        n_lb = len(lb_list)
        n_fhir = len(_FHIR_EXPANDED)
        append = out.append
        i = 0
        while left > 0:
            c = cats[i]
            t = start + hours[i] * _H + int(rand() * _H)
            i += 1
            if c == C_FHIR:
                # The hot path: about three quarters of all rows.
                principal, panel = clinical[int(rand() * n_clinical)]
                action, rtype, prefix, ok, lat0, lat_span = _FHIR_EXPANDED[int(rand() * n_fhir)]
                if panel is None or rand() < 0.015:
                    pid = self.patients[int(rand() * 4000)]
                else:
                    pid = panel[int(rand() * 30)]
                rid = "Patient/" + pid if prefix is None else prefix + str(1000000 + getrandbits(23))
                s = rand()
                deny = 0.10 if panel is None else 0.003
                if s < deny:
                    status, outcome = "failure", "access denied"
                elif s > 0.996:
                    status, outcome = "attempt", "Request accepted, awaiting upstream FHIR server"
                else:
                    status = "success"
                    outcome = ok if s < 0.99 else f"{ok} ({_PEOPLE[int(rand() * len(_PEOPLE))]})"
                sess = sessions.get(principal) or self.session(principal)
                lb = lb_list[int(rand() * n_lb)]
                if lb is None:
                    det = ('{"patient_id":"' + pid + '","session_context":' + sess[0]
                           + ',"gdpr_context":{"data_subject_id":"' + pid + '"}}')
                else:
                    det = ('{"patient_id":"' + pid + '","session_context":' + sess[0]
                           + ',"gdpr_context":{"legal_basis":"' + lb + '","data_subject_id":"'
                           + pid + '"}}')
                append((t, (principal, action, rtype, rid, status, outcome, corr(), "PHI",
                            "hipaa-6y", "P7Y", lat0 + int(rand() * lat_span), det)))
                left -= 1
            elif c == C_LOGIN_OK:
                p = self.humans[int(rand() * len(self.humans))]
                sess = self.new_session(p)
                det = self.details(p, {"method": "sso" if rand() < 0.6 else "password+totp"},
                                   legal_basis=False)
                append((t, (p, "auth.login", "Session", "Session/" + sess[1]["session_id"],
                            "success", "Login succeeded", corr(), "INTERNAL", "gdpr-default",
                            None, 40 + int(rand() * 400), det)))
                left -= 1
            elif c == C_LOGOUT or c == C_MFA:
                p = self.humans[int(rand() * len(self.humans))]
                sess = self.session(p)
                if c == C_LOGOUT:
                    action, status, outcome = "auth.logout", "success", "Logged out"
                    extra = {"reason": "user" if rand() < 0.7 else "idle_timeout"}
                else:
                    action = "auth.mfa.challenge"
                    status, outcome = (("success", "MFA challenge passed") if rand() < 0.95
                                       else ("failure", "MFA code rejected"))
                    extra = {"factor": "totp" if rand() < 0.7 else "push"}
                det = self.details(p, extra, legal_basis=False)
                append((t, (p, action, "Session", "Session/" + sess[1]["session_id"], status,
                            outcome, corr(), "INTERNAL", "gdpr-default", None,
                            10 + int(rand() * 200), det)))
                left -= 1
            elif c == C_SYSTEM:
                if rand() < 0.7:
                    p, action, rtype, rid = "svc-monitor", "system.healthcheck", "Service", "Service/fhir-api"
                    status, outcome = (("success", "Healthy") if rand() < 0.99
                                       else ("failure", "Upstream timeout"))
                else:
                    p = self.humans[int(rand() * len(self.humans))]
                    action, rtype = "directory.practitioner.read", "Practitioner"
                    rid = f"Practitioner/pr-{r.randrange(1, 400):04d}"
                    status, outcome = "success", "Practitioner directory viewed"
                det = self.details(p, {"component": "fhir-api"}, legal_basis=False)
                append((t, (p, action, rtype, rid, status, outcome, corr(), "PUBLIC",
                            "gdpr-default", None, 2 + int(rand() * 50), det)))
                left -= 1
            elif c == C_LOGIN_FAIL:
                p = self.humans[int(rand() * len(self.humans))]
                left -= self.login_failures(t, end, p, 1, False, out)
            elif c == C_BURST:
                p = self.humans[int(rand() * len(self.humans))]
                n = r.randint(3, 8)
                left -= self.login_failures(t, end, p, min(n, left), rand() < 0.4, out,
                                            max_events=left)
            elif c == C_AFTER_HOURS:
                t = start + night[int(rand() * len(night))] * _H + int(rand() * _H)
                left -= self.after_hours_read(t, out)
            elif c == C_EXPORT:
                left -= self.export(t, out)
            elif c == C_DISCLOSE:
                left -= self.disclosure(t, out)
            elif c == C_ADMIN:
                left -= self.admin(t, out)
            elif c == C_AUDIT_CFG or c == C_AUDIT_RET:
                left -= self.audit_config(t, c == C_AUDIT_RET, out)
            elif c == C_EMERGENCY:
                left -= self.emergency(t, end, left, out)
            elif c == C_CONSENT:
                left -= self.consent(t, out)
            elif c == C_DSR:
                left -= self.dsr(t, end, out)
            else:  # C_TRANSFER
                left -= self.transfer(t, out)
        out.sort(key=_first)  # stable: equal timestamps keep their generation order
        return out

    # -- the rarer categories (a few per cent of the rows; clarity over speed)

    def login_failures(self, t, end, p, n, then_success, out, max_events=1) -> int:
        r = self.rng
        n = max(1, min(n, max_events))
        then_success = then_success and n + 1 <= max_events
        span = (n + 1) * 40_000 + 120_000
        t = min(t, end - span - 1)
        sess = self.anonymous_session(p, external=n > 1)
        corr = self.corr()
        for k in range(n):
            outcome = "Account temporarily locked" if k >= 4 else "Invalid credentials"
            det = _ENC({"method": "password", "attempt": k + 1, "session_context": sess})
            out.append((t, (p, "auth.login", "Session", None, "failure", outcome, corr,
                            "INTERNAL", "gdpr-default", None, 30 + r.randrange(300), det)))
            t += r.randint(5_000, 40_000)
        if then_success:
            t += r.randint(10_000, 120_000)
            det = _ENC({"method": "password+totp", "attempt": n + 1, "session_context": sess})
            out.append((t, (p, "auth.login", "Session", "Session/" + sess["session_id"], "success",
                            "Login succeeded", corr, "INTERNAL", "gdpr-default", None,
                            40 + r.randrange(300), det)))
            n += 1
        return n

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

    def admin(self, t, out) -> int:
        r = self.rng
        p = r.choice(self.admins)
        x = r.random()
        target = r.choice(self.humans)
        if x < 0.3:
            role = r.choice(_ROLES)
            action, extra, outcome = "admin.role.assign", {"role": role}, f"Role {role} assigned"
        elif x < 0.45:
            role = r.choice(_ROLES)
            action, extra, outcome = "admin.role.revoke", {"role": role}, f"Role {role} revoked"
        elif x < 0.65:
            perm = r.choice(_PERMISSIONS)
            action, extra, outcome = ("admin.permission.grant", {"permission": perm},
                                      f"Permission {perm} granted")
        elif x < 0.85:
            kind = r.choice(["nurse", "dr", "clerk"])
            target = f"usr-{kind}-{r.randrange(100, 999):03d}"
            action, extra, outcome = ("admin.user.create", {"role": _ROLES[0]},
                                      f"User created for {r.choice(_PEOPLE)}")
        else:
            action, extra, outcome = ("admin.user.deactivate", {"reason": "left organization"},
                                      "User deactivated")
        extra["target_user"] = target
        status = "success" if r.random() < 0.97 else "failure"
        if status == "failure":
            outcome = "insufficient privileges"
        det = self.details(p, extra, legal_basis=False)
        out.append((t, (p, action, "User", "User/" + target, status, outcome, self.corr(),
                        "INTERNAL", "gdpr-default", None, 30 + r.randrange(300), det)))
        return 1

    def audit_config(self, t, retention, out) -> int:
        r = self.rng
        p = r.choice(self.admins)
        if retention:
            old, new = r.choice([("hipaa-6y", "hipaa-7y"), ("gdpr-default", "gdpr-10y"),
                                 ("hipaa-7y", "hipaa-6y")])
            action, outcome = "audit.retention.change", f"Retention policy changed from {old} to {new}"
            extra = {"old_policy": old, "new_policy": new, "old_ttl": "P6Y", "new_ttl": "P7Y"}
        else:
            setting, old, new = r.choice(_AUDIT_SETTINGS)
            action, outcome = "audit.config.update", f"Audit setting {setting} changed"
            extra = {"setting": setting, "old_value": old, "new_value": new}
        det = self.details(p, extra, legal_basis=False)
        out.append((t, (p, action, "AuditConfig", "AuditConfig/default", "success", outcome,
                        self.corr(), "INTERNAL", "gdpr-default", None, 50 + r.randrange(500), det)))
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

    def new_session_dict(self, principal: str) -> dict:
        """A session for a future event, without touching today's sessions."""
        d = self.anonymous_session(principal, external=False)
        d["session_id"] = "s-" + d["session_id"][5:]
        return d

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


def _first(item):
    return item[0]


_CUM_CATEGORY = []
_acc = 0
for _c, _w in _CATEGORY_WEIGHTS:
    _acc += _w
    _CUM_CATEGORY.append(_acc)
del _acc, _c, _w


# ------------------------------------------------------------------ rows


def _rows(
    options: SeedOptions,
    start_hashes: Mapping[str, str | None] | None,
    mode: str,
    stats: dict | None = None,
) -> Iterator[tuple]:
    """Rows as tuples in INSERT_COLUMNS order, per organization in chain order.

    mode "sqlite": timestamp as SQLAlchemy's naive-UTC SQLite text; "datetime": aware datetime.
    """
    first_day, _ = options.day_range()
    start_hashes = start_hashes or {}
    jc = _JsonCache({None: "null", "": "null"})
    sha256 = hashlib.sha256
    alg, ver = HASH_ALGORITHM, EVENT_VERSION
    as_text = mode == "sqlite"
    epoch, td = _EPOCH, timedelta
    for index, (org_id, _name, tz_name) in enumerate(demo_organizations(options.orgs)):
        org = _Org(index, org_id, tz_name, options.seed, options.days)
        jorg = js_json(org_id)
        prev = start_hashes.get(org_id)
        hour_cache: dict[int, tuple[str, str]] = {}
        first_ms = last_ms = None
        for day_index in range(options.days):
            day = first_day + timedelta(days=day_index)
            events = org.day_events(day_index, day, options.events_per_day)
            if events:
                if first_ms is None:
                    first_ms = events[0][0]
                last_ms = events[-1][0]
            for t, p in events:
                hk, rem = divmod(t, _H)
                pre = hour_cache.get(hk)
                if pre is None:
                    dt = epoch + td(hours=hk)
                    pre = hour_cache[hk] = (dt.strftime("%Y-%m-%dT%H:"), dt.strftime("%Y-%m-%d %H:"))
                sec, msr = divmod(rem, 1000)
                tail = _MMSS[sec] + "." + _MS3[msr]
                principal, action, rtype, rid, status, outcome, corr, dclass, ret, ttl, lat, det = p
                h = sha256((
                    "action:" + jc[action] + "|organizationId:" + jorg
                    + "|outcomeDescription:" + jc[outcome] + "|principalId:" + jc[principal]
                    + "|status:" + jc[status]
                    + "|targetResourceId:" + ('"' + rid + '"' if rid else "null")
                    + "|targetResourceType:" + jc[rtype]
                    + '|timestamp:"' + pre[0] + tail + 'Z"'
                ).encode()).hexdigest()
                ts = pre[1] + tail + "000" if as_text else epoch + td(milliseconds=t)
                yield (ts, ttl, principal, org_id, action, rtype, rid, status, outcome, h, alg,
                       ver, corr, dclass, ret, lat, None, det, prev)
                prev = h
        if stats is not None and first_ms is not None:
            stats[org_id] = (first_ms, last_ms)


def generate_events(
    options: SeedOptions, start_hashes: Mapping[str, str | None] | None = None
) -> Iterator[dict]:
    """The seeded rows as audit_log column dicts (no id), each organization in chain order.

    `timestamp` is an aware UTC datetime, `details` a dict; `hash` and `prev_hash` are set, the
    first row of an organization chaining from `start_hashes[org]` (default None).
    """
    loads = json.loads
    for row in _rows(options, start_hashes, "datetime"):
        d = dict(zip(INSERT_COLUMNS, row))
        d["details"] = loads(d["details"])
        yield d


# ------------------------------------------------------------------ database


def _chain_heads(engine: Engine, org_ids: list[str], range_start: datetime) -> dict[str, str | None]:
    """Hash of each organization's newest row; refuses a range that would interleave."""
    heads: dict[str, str | None] = {}
    c = audit_log.c
    with engine.connect() as conn:
        for org_id in org_ids:
            row = conn.execute(
                select(c.timestamp, c.hash)
                .where(c.organization_id == org_id)
                .order_by(c.timestamp.desc(), c.id.desc())
                .limit(1)
            ).first()
            if row is None:
                continue
            if row.timestamp >= range_start:
                raise ValueError(
                    f"organization {org_id} already has audit events up to "
                    f"{row.timestamp.isoformat()}; seeding from {range_start.isoformat()} would "
                    "interleave with them and break its hash chain (seed later days, another "
                    "organization count, or an empty database)"
                )
            heads[org_id] = row.hash
    return heads


def _max_id(engine: Engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.max(audit_log.c.id))).scalar() or 0


def _insert_sqlite(engine, rows, batch_size, total, progress) -> int:
    sql = (f"INSERT INTO audit_log ({_QUOTED_COLUMNS}) "
           f"VALUES ({', '.join('?' * len(INSERT_COLUMNS))})")
    done = 0
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        conn.commit()
        cur = conn.cursor()
        old = cur.execute("PRAGMA synchronous").fetchone()[0]
        cur.execute("PRAGMA synchronous=OFF")
        try:
            while True:
                cur.executemany(sql, islice(rows, batch_size))
                n = cur.rowcount
                conn.commit()
                if n <= 0:
                    break
                done += n
                if progress:
                    progress(done, total)
        except BaseException:
            conn.rollback()
            raise
        finally:
            cur.execute(f"PRAGMA synchronous={int(old)}")
            cur.close()
    finally:
        raw.close()
    return done


def _insert_postgresql(engine, rows, batch_size, total, progress) -> int:
    from psycopg2.extras import execute_values

    template = "(" + ",".join("%s::jsonb" if c == "details" else "%s" for c in INSERT_COLUMNS) + ")"
    sql = f"INSERT INTO audit_log ({_QUOTED_COLUMNS}) VALUES %s"
    done = 0
    raw = engine.raw_connection()
    try:
        conn = raw.driver_connection
        conn.commit()
        try:
            with conn.cursor() as cur:
                while True:
                    batch = list(islice(rows, batch_size))
                    if not batch:
                        break
                    cur.execute("SET LOCAL synchronous_commit TO OFF")
                    # One VALUES list per page keeps identity values in insertion order.
                    execute_values(cur, sql, batch, template=template, page_size=2000)
                    conn.commit()
                    done += len(batch)
                    if progress:
                        progress(done, total)
        except BaseException:
            conn.rollback()
            raise
    finally:
        raw.close()
    return done


def _insert_generic(engine, rows, batch_size, total, progress) -> int:
    done = 0
    while True:
        batch = [dict(zip(INSERT_COLUMNS, r)) for r in islice(rows, batch_size)]
        if not batch:
            return done
        for b in batch:
            b["details"] = json.loads(b["details"])
        with engine.begin() as conn:
            conn.execute(audit_log.insert(), batch)
        done += len(batch)
        if progress:
            progress(done, total)


def seed_audit_log(
    engine: Engine,
    options: SeedOptions = SeedOptions(),
    progress: Callable[[int, int], None] | None = None,
) -> SeedResult:
    """Append the demo traffic to audit_log; see the module docstring for the re-seeding rule."""
    orgs = [o[0] for o in demo_organizations(options.orgs)]
    first_day, _ = options.day_range()
    range_start = datetime(first_day.year, first_day.month, first_day.day, tzinfo=timezone.utc)
    heads = _chain_heads(engine, orgs, range_start)
    before = _max_id(engine) if options.tamper else 0
    total = options.total_rows
    dialect = engine.dialect.name
    stats: dict[str, tuple[int, int]] = {}
    started = time.perf_counter()
    if dialect == "sqlite":
        rows = _rows(options, heads, "sqlite", stats)
        done = _insert_sqlite(engine, rows, options.batch_size, total, progress)
    elif dialect == "postgresql":
        rows = _rows(options, heads, "datetime", stats)
        done = _insert_postgresql(engine, rows, options.batch_size, total, progress)
    else:
        rows = _rows(options, heads, "datetime", stats)
        done = _insert_generic(engine, rows, options.batch_size, total, progress)
    seconds = time.perf_counter() - started
    tampered = tamper_rows(engine, options.tamper, options.seed, min_id=before + 1) if options.tamper else []
    firsts = [v[0] for v in stats.values()]
    lasts = [v[1] for v in stats.values()]
    return SeedResult(
        rows=done,
        organizations=orgs,
        seconds=seconds,
        rows_per_second=done / seconds if seconds > 0 else float("inf"),
        tampered_ids=tampered,
        first_timestamp=_EPOCH + timedelta(milliseconds=min(firsts)) if firsts else None,
        last_timestamp=_EPOCH + timedelta(milliseconds=max(lasts)) if lasts else None,
    )


def tamper_rows(
    engine: Engine,
    k: int,
    seed: int,
    organization_id: str | None = None,
    *,
    min_id: int | None = None,
) -> list[int]:
    """Alter k rows (outcome, status or action) without fixing their hash; their ids, ascending.

    Deterministic for the seed and the table's content. `min_id` limits the choice to rows with
    id >= min_id (seed_audit_log uses it to touch only the rows it inserted).
    """
    if k <= 0:
        return []
    c = audit_log.c
    query = select(c.id).order_by(c.id)
    if organization_id is not None:
        query = query.where(c.organization_id == organization_id)
    if min_id is not None:
        query = query.where(c.id >= min_id)
    rng = random.Random(f"tamper:{seed}:{organization_id or '*'}")
    with engine.begin() as conn:
        ids = list(conn.execute(query).scalars())
        if k > len(ids):
            raise ValueError(f"cannot tamper {k} rows: only {len(ids)} candidate rows")
        chosen = sorted(rng.sample(ids, k))
        rows = conn.execute(
            select(c.id, c.action, c.status, c.outcome_description)
            .where(c.id.in_(chosen)).order_by(c.id)
        ).all()
        for row in rows:
            kind = rng.randrange(3)
            if kind == 0:
                new = "Routine access" if row.outcome_description != "Routine access" else "Routine access."
                values = {"outcome_description": new}
            elif kind == 1:
                values = {"status": "failure" if row.status == "success" else "success"}
            else:
                values = {"action": "auth.logout" if row.action != "auth.logout" else "auth.login"}
            conn.execute(update(audit_log).where(c.id == row.id).values(**values))
    return chosen


def text_progress(stream=None, width: int = 30) -> Callable[[int, int], None]:
    """A plain-text progress bar for `seed_audit_log(progress=...)`."""
    out = stream or sys.stderr

    def show(done: int, total: int) -> None:
        filled = int(width * done / total) if total else width
        out.write(f"\r[{'#' * filled}{' ' * (width - filled)}] {done:,}/{total:,} rows")
        if done >= total:
            out.write("\n")
        out.flush()

    return show
