"""Administrative traffic: role assignments and revocations, permission grants, user creation
and deactivation by the organization's admins (a few refused), and changes to the audit
configuration and to retention policies."""

from __future__ import annotations

from compliance_reports.demo.vocabulary import _AUDIT_SETTINGS, _PEOPLE, _PERMISSIONS, _ROLES


class AdministrationTraffic:
    """Mixed into `Organization`, whose rng, principals, patients and helpers
    (`details`, `corr`, ...) it uses. Each method appends its events to `out` and returns
    how many it appended, so the day planner can keep to its budget."""

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
