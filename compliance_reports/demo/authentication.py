"""Failed-login traffic: single invalid-credential attempts and bursts of failures, some ending
in a lock-out message and some in a successful login. Plain logins, logouts and MFA challenges
are frequent enough to be generated inline by `Organization.day_events`."""

from __future__ import annotations

from compliance_reports.demo.vocabulary import _ENC


class AuthenticationTraffic:
    """Mixed into `Organization`, whose rng, principals, patients and helpers
    (`details`, `corr`, ...) it uses. Each method appends its events to `out` and returns
    how many it appended, so the day planner can keep to its budget."""

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
