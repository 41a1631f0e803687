"""One organization's audit traffic, day by day: its principals, patients and sessions, and the
day planner, which releases the data-subject request completions due that day, spreads the rest
of the day's budget over the hours with the diurnal load of the organization's time zone and over
the traffic categories by weight, and generates the frequent categories (FHIR reads and writes,
logins, logouts, MFA challenges, system traffic; over 90% of the rows) inline for speed. The
rarer categories are methods of one mixin per kind of traffic, written for clarity over speed.
"""

from __future__ import annotations

import heapq
import random
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

from compliance_reports.demo.administration import AdministrationTraffic
from compliance_reports.demo.authentication import AuthenticationTraffic
from compliance_reports.demo.breaches import BreachTraffic
from compliance_reports.demo.clinical import ClinicalTraffic
from compliance_reports.demo.disclosures import DisclosureTraffic
from compliance_reports.demo.gdpr import GdprTraffic
from compliance_reports.demo.vocabulary import (
    _CATEGORY_TABLE,
    _DAY,
    _DIURNAL,
    _ENC,
    _FHIR_EXPANDED,
    _H,
    _LEGAL_BASIS_EXPANDED,
    _NIGHT_LOCAL_HOURS,
    _PEOPLE,
    _SERVICE_AGENT,
    _USER_AGENTS,
    C_ADMIN,
    C_AFTER_HOURS,
    C_AUDIT_CFG,
    C_AUDIT_RET,
    C_BURST,
    C_CONSENT,
    C_DISCLOSE,
    C_DSR,
    C_EMERGENCY,
    C_EXPORT,
    C_FHIR,
    C_LOGIN_FAIL,
    C_LOGIN_OK,
    C_LOGOUT,
    C_MFA,
    C_SYSTEM,
    _choices_table,
    _day_ms,
    _draw,
)


def _first(item):
    return item[0]


def _details_head(extra: dict) -> str:
    """What ``Organization.details(p, extra, legal_basis=False)`` writes before the session's
    JSON (which ends it with "}"), for the frequent constant `extra`s."""
    return _ENC(extra)[:-1] + ',"session_context":'


_AGENT_JSON = {ua: _ENC(ua) for ua in [*_USER_AGENTS, _SERVICE_AGENT]}
_LOGIN_SSO = _details_head({"method": "sso"})
_LOGIN_TOTP = _details_head({"method": "password+totp"})
_LOGOUT_USER = _details_head({"reason": "user"})
_LOGOUT_IDLE = _details_head({"reason": "idle_timeout"})
_MFA_TOTP = _details_head({"factor": "totp"})
_MFA_PUSH = _details_head({"factor": "push"})
_SYSTEM_COMPONENT = _details_head({"component": "fhir-api"})


class Organization(AuthenticationTraffic, ClinicalTraffic, DisclosureTraffic,
                   AdministrationTraffic, GdprTraffic, BreachTraffic):
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
        self.hour_tables: dict[tuple[int, ...], list[int]] = {}  # local hours of a UTC day -> table

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
        sid = "s-%016x" % r.getrandbits(64)
        d = {"ip_address": ip, "user_agent": ua, "session_id": sid}
        # _ENC(d), written out: the address and id need no escaping, the agent is encoded once
        s = (f'{{"ip_address":"{ip}","user_agent":{_AGENT_JSON[ua]},"session_id":"{sid}"}}', d)
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

    def new_session_dict(self, principal: str) -> dict:
        """A session for a future event, without touching today's sessions."""
        d = self.anonymous_session(principal, external=False)
        d["session_id"] = "s-" + d["session_id"][5:]
        return d

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

        hour_table = self.hour_tables.get(tuple(local_hours))
        if hour_table is None:
            hour_table = self.hour_tables[tuple(local_hours)] = _choices_table(range(24), cum)
        hours = _draw(hour_table, max(left, 0), rand)  # r.choices(range(24), cum_weights=cum, ...)
        cats = _draw(_CATEGORY_TABLE, max(left, 0), rand)  # r.choices(categories, _CUM_CATEGORY, ...)
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
                    det = (f'{{"patient_id":"{pid}","session_context":{sess[0]}'
                           f',"gdpr_context":{{"data_subject_id":"{pid}"}}}}')
                else:
                    det = (f'{{"patient_id":"{pid}","session_context":{sess[0]}'
                           f',"gdpr_context":{{"legal_basis":"{lb}","data_subject_id":"{pid}"}}}}')
                hx = "%032x" % getrandbits(128)  # self.corr(), inline
                append((t, (principal, action, rtype, rid, status, outcome,
                            f"{hx[:8]}-{hx[8:12]}-{hx[12:16]}-{hx[16:20]}-{hx[20:]}", "PHI",
                            "hipaa-6y", "P7Y", lat0 + int(rand() * lat_span), det)))
                left -= 1
            elif c == C_LOGIN_OK:
                p = self.humans[int(rand() * len(self.humans))]
                sess = self.new_session(p)
                # self.details(p, {"method": ...}, legal_basis=False), written out
                det = (_LOGIN_SSO if rand() < 0.6 else _LOGIN_TOTP) + sess[0] + "}"
                append((t, (p, "auth.login", "Session", "Session/" + sess[1]["session_id"],
                            "success", "Login succeeded", corr(), "INTERNAL", "gdpr-default",
                            None, 40 + int(rand() * 400), det)))
                left -= 1
            elif c == C_LOGOUT or c == C_MFA:
                p = self.humans[int(rand() * len(self.humans))]
                sess = self.session(p)
                if c == C_LOGOUT:
                    action, status, outcome = "auth.logout", "success", "Logged out"
                    head = _LOGOUT_USER if rand() < 0.7 else _LOGOUT_IDLE
                else:
                    action = "auth.mfa.challenge"
                    status, outcome = (("success", "MFA challenge passed") if rand() < 0.95
                                       else ("failure", "MFA code rejected"))
                    head = _MFA_TOTP if rand() < 0.7 else _MFA_PUSH
                det = head + sess[0] + "}"  # self.details(p, extra, legal_basis=False)
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
                det = _SYSTEM_COMPONENT + self.session(p)[0] + "}"  # self.details(p, {...}, legal_basis=False)
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
