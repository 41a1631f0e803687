"""The table of bad inputs: configuration files, command-line arguments and request rows.

Each case is what a careless operator or an attacker could type. The runner
(test_bad_input.py) applies it through the real CLI on SQLite and on PostgreSQL and checks the
exit status, that the message names the field, and that nothing was written.

`{file}` in the arguments is replaced by the path of the case's file, `{tmp}` by its folder.
"""

from __future__ import annotations

import copy
import textwrap
from dataclasses import dataclass, field

import yaml

DELETE = object()


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    needles: tuple[str, ...]
    content: str | bytes | None = None
    status: int = 2
    env: dict[str, str | None] = field(default_factory=dict)


# The state every case starts from (written once per database by the runner).
BASE_DESTINATIONS = """\
name: archive
type: storage
provider: local
base_path: delivered
---
name: officer-mail
type: email
host: 127.0.0.1
port: 8025
security: none
from: reports@example.org
to: [officer@example.org]
"""
BASE_TEMPLATES = """\
name: base-monthly
defaults:
  report_type: hipaa_audit_trail
  schedule: {frequency: monthly, time: "05:00", day_of_month: 1}
"""
BASE_REPORT = {
    "id": "r-good",
    "name": "Daily summary",
    "organization_id": "org-1",
    "report_type": "general_compliance",
    "schedule": {"frequency": "daily", "time": "06:00", "timezone": "Europe/Berlin"},
    "formats": ["csv", "json"],
    "destinations": ["archive"],
}
GOOD_EMAIL = {"name": "new-mail", "type": "email", "host": "smtp.example.org",
              "from": "reports@example.org", "to": ["officer@example.org"]}
GOOD_WEBHOOK = {"name": "new-hook", "type": "webhook", "url": "https://siem.example.org/hooks/in"}
GOOD_STORAGE = {"name": "new-store", "type": "storage", "provider": "local", "base_path": "out"}
GOOD_TEMPLATE = {"name": "new-template", "defaults": {"report_type": "custom"}}


def _mutate(base: dict, changes: dict) -> dict:
    doc = copy.deepcopy(base)
    for path, value in changes.items():
        *parents, last = path.split(".")
        target = doc
        for part in parents:
            target = target.setdefault(part, {})
        if value is DELETE:
            target.pop(last, None)
        else:
            target[last] = value
    return doc


def dump_yaml(doc: dict) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=False, width=10_000)


def _file(first: dict, bad: str) -> str:
    """A valid document first: a bad second document must keep it from being written too."""
    return dump_yaml(first) + "---\n" + bad


def report(case_id: str, needles, changes: dict, env=None) -> Case:
    bad = dump_yaml(_mutate({**BASE_REPORT, "id": "r-bad"}, changes))
    return Case(f"report-{case_id}", ("reports", "apply", "-f", "{file}"), tuple(needles),
                _file({**BASE_REPORT, "id": "r-new"}, bad), env=env or {})


def report_text(case_id: str, needles, text: str | bytes) -> Case:
    return Case(f"report-{case_id}", ("reports", "apply", "-f", "{file}"), tuple(needles), text)


def destination(case_id: str, base: dict, needles, changes: dict) -> Case:
    bad = dump_yaml(_mutate(base, changes))
    return Case(f"destination-{case_id}", ("destinations", "apply", "-f", "{file}"), tuple(needles),
                _file({**GOOD_STORAGE, "name": "first-store"}, bad))


def template(case_id: str, needles, changes: dict) -> Case:
    bad = dump_yaml(_mutate(GOOD_TEMPLATE, changes))
    return Case(f"template-{case_id}", ("templates", "apply", "-f", "{file}"), tuple(needles),
                _file({**GOOD_TEMPLATE, "name": "first-template"}, bad))


def cli(case_id: str, needles, *argv: str, status: int = 2, env=None) -> Case:
    return Case(f"cli-{case_id}", tuple(argv), tuple(needles), None, status, env or {})


def _dedent(text: str) -> str:
    return textwrap.dedent(text)


ALIAS_BOMB = _dedent("""\
    a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
    b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
    c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
    d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
    e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
    f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
    g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
    h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
    i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
    """)
GOOD_REPORT_TEXT = dump_yaml({**BASE_REPORT, "id": "r-new"})

REPORT_CASES = [
    # identifiers and names
    report("id-trailing-newline", ["'id'", "slug"], {"id": "r-1\n"}),
    report("id-pipe", ["'id'", "slug"], {"id": "r|1"}),
    report("id-space", ["'id'", "slug"], {"id": "r 1"}),
    report("id-too-long", ["'id'", "at most 128"], {"id": "r" * 129}),
    report("id-uppercase", ["'id'", "slug"], {"id": "R-1"}),
    report("id-empty", ["'id'"], {"id": ""}),
    report("id-integer", ["'id'", "string"], {"id": 5}),
    report("name-empty", ["'name'", "empty"], {"name": ""}),
    report("name-too-long", ["'name'", "at most 255"], {"name": "n" * 256}),
    report("name-nul", ["'name'", "U+0000"], {"name": "a\x00b"}),
    report("name-newline", ["'name'", "U+000A"], {"name": "a\nb"}),
    report("name-bidi-override", ["'name'", "U+202E"], {"name": "invoice\u202etxt.exe"}),
    report("name-lone-surrogate", ["'name'", "surrogate"], {"name": "a\ud800b"}),
    report("name-c1-control", ["'name'", "U+0085"], {"name": "a\x85b"}),
    report("organization-too-long", ["'organization_id'", "at most 255"], {"organization_id": "o" * 300}),
    report("organization-trailing-newline", ["'organization_id'"], {"organization_id": "org-1\n"}),
    report("organization-slash", ["'organization_id'"], {"organization_id": "org/1"}),
    report("organization-nul", ["'organization_id'", "U+0000"], {"organization_id": "org\x001"}),
    report("report-type-unknown", ["'report_type'"], {"report_type": "sox_audit"}),
    # schedule
    report("frequency-hourly", ["'schedule.frequency'"], {"schedule.frequency": "hourly"}),
    report("time-99", ["'schedule.time'", "99:99"], {"schedule.time": "99:99"}),
    report("time-trailing-newline", ["'schedule.time'"], {"schedule.time": "06:00\n"}),
    report("time-one-digit-hour", ["'schedule.time'"], {"schedule.time": "6:00"}),
    report("time-sexagesimal-int", ["'schedule.time'"], {"schedule.time": 360}),
    report("time-arabic-digits", ["'schedule.time'"], {"schedule.time": "\u0660\u0666:\u0660\u0660"}),
    report("timezone-unknown", ["'schedule.timezone'", "Mars/Olympus"], {"schedule.timezone": "Mars/Olympus"}),
    report("timezone-trailing-newline", ["'schedule.timezone'"], {"schedule.timezone": "UTC\n"}),
    report("timezone-path", ["'schedule.timezone'"], {"schedule.timezone": "../../etc/passwd"}),
    report("timezone-empty", ["'schedule.timezone'"], {"schedule.timezone": ""}),
    report("day-of-week-on-daily", ["'schedule'", "day_of_week"], {"schedule.day_of_week": "monday"}),
    report("weekly-without-day", ["'schedule'", "day_of_week"], {"schedule.frequency": "weekly"}),
    report("day-of-week-capitalised", ["'schedule.day_of_week'"],
           {"schedule.frequency": "weekly", "schedule.day_of_week": "Monday"}),
    report("day-of-month-0", ["'schedule.day_of_month'", "between 1 and 31"],
           {"schedule.frequency": "monthly", "schedule.day_of_month": 0}),
    report("day-of-month-32", ["'schedule.day_of_month'"],
           {"schedule.frequency": "monthly", "schedule.day_of_month": 32}),
    report("day-of-month-bool", ["'schedule.day_of_month'"],
           {"schedule.frequency": "monthly", "schedule.day_of_month": True}),
    report("day-of-month-first", ["'schedule.day_of_month'"],
           {"schedule.frequency": "monthly", "schedule.day_of_month": "first"}),
    report("start-date-9999", ["'schedule.start_date'", "2999-12-31"], {"schedule.start_date": "9999-01-01"}),
    report("end-before-start", ["'schedule'", "end_date"],
           {"schedule.start_date": "2026-05-01", "schedule.end_date": "2026-04-01"}),
    report("start-date-feb-30", ["'schedule.start_date'"], {"schedule.start_date": "2026-02-30"}),
    report("start-date-number", ["'schedule.start_date'"], {"schedule.start_date": 1700000000}),
    report_text("start-date-timestamp", ["'schedule.start_date'"],
                GOOD_REPORT_TEXT.replace("timezone: Europe/Berlin",
                                         "timezone: Europe/Berlin\n  start_date: 2026-01-01 10:00:00")
                .replace("id: r-new", "id: r-bad")),
    report("max-catch-up-true", ["'schedule.max_catch_up'", "not true or false"],
           {"schedule.max_catch_up": True}),
    report("max-catch-up-0", ["'schedule.max_catch_up'"], {"schedule.max_catch_up": 0}),
    report("max-catch-up-367", ["'schedule.max_catch_up'"], {"schedule.max_catch_up": 367}),
    report("max-catch-up-string", ["'schedule.max_catch_up'"], {"schedule.max_catch_up": "3"}),
    report("max-catch-up-float", ["'schedule.max_catch_up'"], {"schedule.max_catch_up": 1.5}),
    report("max-catch-up-infinity", ["'schedule.max_catch_up'"], {"schedule.max_catch_up": float("inf")}),
    # formats and export
    report("formats-empty", ["'formats'"], {"formats": []}),
    report("formats-twice", ["'formats'", "twice"], {"formats": ["pdf", "pdf"]}),
    report("formats-unknown", ["'formats.0'"], {"formats": ["docx"]}),
    report("formats-string", ["'formats'"], {"formats": "pdf"}),
    report("compression-bzip2", ["'export.compression'"], {"export.compression": "bzip2"}),
    report("encrypt-without-key", ["'export'", "encryption_key_env"], {"export.encrypt": True}),
    report("encryption-key-env-space", ["'export.encryption_key_env'"],
           {"export.encrypt": True, "export.encryption_key_env": "MY KEY"}),
    report("encryption-key-env-newline", ["'export.encryption_key_env'"],
           {"export.encrypt": True, "export.encryption_key_env": "KEY\n"}),
    report("encrypt-string", ["'export.encrypt'"], {"export.encrypt": "yes please"}),
    report("plaintext-encryption-key", ["'export'", "encryption_key_env"],
           {"export.encryption_key": "00" * 32}),
    report("redact-without-key", ["'export.redact_identifiers'", "COMPLIANCE_CHECKPOINT_KEY"],
           {"export.redact_identifiers": True}, env={"COMPLIANCE_CHECKPOINT_KEY": None}),
    # options
    report("top-n-0", ["'options.top_n'"], {"options.top_n": 0}),
    report("top-n-huge", ["'options.top_n'"], {"options.top_n": 100000}),
    report("pdf-event-limit-billion", ["'options.pdf_event_limit'"], {"options.pdf_event_limit": 10**9}),
    report("pdf-event-limit-negative", ["'options.pdf_event_limit'"], {"options.pdf_event_limit": -1}),
    report("pdf-table-row-limit-small", ["'options.pdf_table_row_limit'"], {"options.pdf_table_row_limit": 10}),
    report("pdf-table-row-limit-string", ["'options.pdf_table_row_limit'"], {"options.pdf_table_row_limit": "all"}),
    report("threshold-bool", ["'options.failed_login_threshold'"], {"options.failed_login_threshold": True}),
    report("threshold-huge", ["'options.failed_login_threshold'"], {"options.failed_login_threshold": 10**12}),
    report("dsr-days-huge", ["'options.dsr_deadline_days'"], {"options.dsr_deadline_days": 100000}),
    report("breach-hours-0", ["'options.breach_notification_hours'"], {"options.breach_notification_hours": 0}),
    report("after-hours-25", ["'options.after_hours_start'"], {"options.after_hours_start": "25:00"}),
    report("after-hours-newline", ["'options.after_hours_end'"], {"options.after_hours_end": "20:00\n"}),
    report("weekend-string", ["'options.weekend_is_after_hours'"], {"options.weekend_is_after_hours": "maybe"}),
    report("pattern-character-class", ["'options.action_categories'", "character class"],
           {"options.action_categories": {"phi_read": ["fhir.[ab].read"]}}),
    report("pattern-empty", ["'options.action_categories'", "non-empty"],
           {"options.action_categories": {"phi_read": [""]}}),
    report("patterns-65-in-a-category", ["'options.action_categories'", "at most 64"],
           {"options.action_categories": {"phi_read": [f"a{i}.*" for i in range(65)]}}),
    report("patterns-513-in-all", ["'options.action_categories'", "at most 512"],
           {"options.action_categories": {f"c{n}": [f"a{n}.{i}.*" for i in range(60)] for n in range(9)}}),
    report("patterns-40000", ["more than 20000 values"],
           {"options.action_categories": {"phi_read": [f"a{i}.*" for i in range(40_000)]}}),
    report("categories-33", ["'options.action_categories'", "at most"],
           {"options.action_categories": {f"cat_{i}": ["x.*"] for i in range(33)}}),
    report("category-name-spaces", ["'options.action_categories'", "category name"],
           {"options.action_categories": {"Other Stuff": ["x.*"]}}),
    report("category-other-reserved", ["'options.action_categories'", "reserved"],
           {"options.action_categories": {"other": ["x.*"]}}),
    report("pattern-too-long", ["'options.action_categories'", "at most 255"],
           {"options.action_categories": {"phi_read": ["a" * 300]}}),
    report("pattern-nul", ["'options.action_categories.phi_read.0'", "U+0000"],
           {"options.action_categories": {"phi_read": ["fhir\x00.read"]}}),
    report("pattern-wildcards", ["'options.action_categories'", "wildcards"],
           {"options.action_categories": {"phi_read": ["*?" * 10]}}),
    report("patterns-not-a-list", ["'options.action_categories.phi_read'"],
           {"options.action_categories": {"phi_read": "fhir.*.read"}}),
    # criteria
    report("criteria-organization", ["'criteria'", "organization"], {"criteria.organization_id": "org-2"}),
    report("criteria-principal-nul", ["'criteria.principal_ids.0'", "U+0000"], {"criteria.principal_ids": ["u\x001"]}),
    report("criteria-principal-too-long", ["'criteria.principal_ids.0'", "at most 255"],
           {"criteria.principal_ids": ["u" * 300]}),
    report("criteria-actions-1001", ["'criteria.actions'"], {"criteria.actions": [f"a.{i}" for i in range(1001)]}),
    report("criteria-classification", ["'criteria.data_classifications.0'"], {"criteria.data_classifications": ["SECRET"]}),
    report("criteria-status", ["'criteria.statuses.0'"], {"criteria.statuses": ["ok"]}),
    report("criteria-verified-string", ["'criteria.verified_only'"], {"criteria.verified_only": "true"}),
    report("criteria-unknown-field", ["'criteria.colour'", "unknown field"], {"criteria.colour": "blue"}),
    # references, flags, versions
    report("destination-unknown", ["'destinations'", "nowhere"], {"destinations": ["archive", "nowhere"]}),
    report("destination-twice", ["'destinations'", "twice"], {"destinations": ["archive", "archive"]}),
    report("destination-uppercase", ["'destinations'", "slug"], {"destinations": ["Archive"]}),
    report("notify-unknown", ["'notify_on_failure'", "ghost"], {"notify_on_failure": ["ghost"]}),
    report("enabled-int", ["'enabled'"], {"enabled": 1}),
    report("version-bool", ["'version'"], {"version": True}),
    report("version-0", ["'version'"], {"version": 0}),
    report("version-too-big", ["'version'"], {"version": 2**40}),
    report("unknown-field", ["'colour'", "unknown field"], {"colour": "blue"}),
    report("plaintext-password", ["'password'", "password_env"], {"password": "hunter2"}),
    report("template-unknown", ["'template'", "nope"], {"template": "nope"}),
    report_text("kind-destination", ["document 2", "kind"], GOOD_REPORT_TEXT + "---\nkind: destination\nname: x\n"),
    report_text("document-is-a-list", ["document 2", "mapping"], GOOD_REPORT_TEXT + "---\n- a\n- b\n"),
    report_text("document-is-a-scalar", ["document 2", "mapping"], GOOD_REPORT_TEXT + "---\nhello\n"),
    report_text("id-twice-in-file", ["'id'", "twice"], GOOD_REPORT_TEXT + "---\n" + GOOD_REPORT_TEXT),
    # YAML itself
    report_text("duplicate-key", ["duplicate key 'organization_id'"],
                GOOD_REPORT_TEXT + "organization_id: org-2\n"),
    report_text("duplicate-nested-key", ["duplicate key 'time'"],
                GOOD_REPORT_TEXT.replace("time: 06:00", "time: 06:00\n  time: 07:00")
                .replace("time: '06:00'", "time: '06:00'\n  time: '07:00'")),
    report_text("alias-bomb", ["more than 20000 values", "aliases"], ALIAS_BOMB),
    report_text("recursive-alias", ["refers to itself"], "a: &a [*a]\n"),
    report_text("python-tag", ["YAML error", "python/object/apply:os.system"],
                "id: !!python/object/apply:os.system ['true']\n"),
    report_text("binary-tag", ["not allowed", "binary"], GOOD_REPORT_TEXT + "blob: !!binary aGVsbG8=\n"),
    report_text("set-tag", ["not allowed", "set"], GOOD_REPORT_TEXT + "formats2: !!set {pdf: null}\n"),
    report_text("custom-tag", ["YAML error", "!env"], GOOD_REPORT_TEXT.replace("name: Daily summary", "name: !env NAME")),
    report_text("latin-1", ["not valid UTF-8", "byte offset"],
                GOOD_REPORT_TEXT.replace("Daily summary", "Daily r\u00e9sum\u00e9").encode("latin-1")),
    report_text("utf-16-bom", ["UTF-16"], GOOD_REPORT_TEXT.encode("utf-16")),
    report_text("utf-16-without-bom", ["not allowed in YAML"], GOOD_REPORT_TEXT.encode("utf-16-le")),
    report_text("nul-byte-in-file", ["not allowed in YAML"], GOOD_REPORT_TEXT.encode() + b"x: \x00\n"),
    report_text("syntax-error", ["YAML error", "line"], "id: x\n  name: [unclosed\n"),
    report_text("nested-too-deep", ["nested"], "x: " + "[" * 5000 + "]" * 5000 + "\n"),
    report_text("integer-5000-digits", ["YAML error"], GOOD_REPORT_TEXT + "version: " + "9" * 5000 + "\n"),
    report_text("empty-file", ["no report documents"], ""),
    Case("report-file-missing", ("reports", "apply", "-f", "{tmp}/missing.yaml"), ("cannot read",)),
    Case("report-file-name-nul", ("reports", "apply", "-f", "{tmp}/a\x00b.yaml"), ("--file", "NUL")),
]

DESTINATION_CASES = [
    # email
    destination("to-comma-list", GOOD_EMAIL, ["'to.0'", "one email address"], {"to": ["a,b@c.de"]}),
    destination("to-two-addresses", GOOD_EMAIL, ["'to.0'"], {"to": ["a@b.de, c@d.de"]}),
    destination("to-display-name", GOOD_EMAIL, ["'to.0'"], {"to": ["Officer <a@b.de>"]}),
    destination("to-trailing-newline", GOOD_EMAIL, ["'to.0'"], {"to": ["a@b.de\n"]}),
    destination("to-no-dot", GOOD_EMAIL, ["'to.0'", "domain"], {"to": ["a@localhost"]}),
    destination("to-non-ascii", GOOD_EMAIL, ["'to.0'", "ASCII"], {"to": ["\u00e4@b.de"]}),
    destination("to-empty", GOOD_EMAIL, ["'to'"], {"to": []}),
    destination("to-101", GOOD_EMAIL, ["'to'"], {"to": [f"u{i}@example.org" for i in range(101)]}),
    destination("from-not-address", GOOD_EMAIL, ["'from'"], {"from": "reports"}),
    destination("cc-not-address", GOOD_EMAIL, ["'cc.0'"], {"cc": ["x"]}),
    destination("bcc-nul", GOOD_EMAIL, ["'bcc.0'", "U+0000"], {"bcc": ["a\x00@b.de"]}),
    destination("host-newline", GOOD_EMAIL, ["'host'"], {"host": "smtp.example.org\n"}),
    destination("host-spaces", GOOD_EMAIL, ["'host'"], {"host": "smtp example org"}),
    destination("host-empty", GOOD_EMAIL, ["'host'"], {"host": ""}),
    destination("port-0", GOOD_EMAIL, ["'port'"], {"port": 0}),
    destination("port-70000", GOOD_EMAIL, ["'port'"], {"port": 70000}),
    destination("port-bool", GOOD_EMAIL, ["'port'"], {"port": True}),
    destination("security-tls", GOOD_EMAIL, ["'security'"], {"security": "tls"}),
    destination("password-plaintext", GOOD_EMAIL, ["'password'", "password_env"], {"username": "u", "password": "hunter2"}),
    destination("password-env-no-username", GOOD_EMAIL, ["username"], {"password_env": "SMTP_PASSWORD"}),
    destination("password-env-space", GOOD_EMAIL, ["'password_env'"], {"username": "u", "password_env": "SMTP PASSWORD"}),
    destination("username-newline", GOOD_EMAIL, ["'username'"], {"username": "u\nRCPT TO:<x@y.de>"}),
    destination("subject-dunder", GOOD_EMAIL, ["'subject'", "__class__"], {"subject": "{__class__}"}),
    destination("subject-huge-width", GOOD_EMAIL, ["'subject'", "larger than"],
                {"subject": "{report_name:x>999999999999}"}),
    destination("subject-attribute", GOOD_EMAIL, ["'subject'"], {"subject": "{report_name.__class__}"}),
    destination("subject-index", GOOD_EMAIL, ["'subject'"], {"subject": "{report_name[0]}"}),
    destination("subject-positional", GOOD_EMAIL, ["'subject'"], {"subject": "{0}"}),
    destination("subject-conversion", GOOD_EMAIL, ["'subject'", "conversion"], {"subject": "{report_name!r}"}),
    destination("subject-nested-spec", GOOD_EMAIL, ["'subject'"], {"subject": "{report_name:{period}}"}),
    destination("subject-crlf", GOOD_EMAIL, ["'subject'"], {"subject": "Report\r\nBcc: evil@example.org"}),
    destination("subject-unknown-field", GOOD_EMAIL, ["'subject'", "unknown placeholder"], {"subject": "{body}"}),
    destination("subject-malformed", GOOD_EMAIL, ["'subject'", "malformed"], {"subject": "{report_name"}),
    destination("subject-too-long", GOOD_EMAIL, ["'subject'", "at most 512"], {"subject": "s" * 600}),
    destination("max-message-0", GOOD_EMAIL, ["'max_message_mb'"], {"max_message_mb": 0}),
    destination("max-message-inf", GOOD_EMAIL, ["'max_message_mb'"], {"max_message_mb": float("inf")}),
    destination("max-message-nan", GOOD_EMAIL, ["'max_message_mb'"], {"max_message_mb": float("nan")}),
    destination("oversize-ignore", GOOD_EMAIL, ["'oversize'"], {"oversize": "ignore"}),
    destination("retry-attempts-0", GOOD_EMAIL, ["'retry.max_attempts'"], {"retry.max_attempts": 0}),
    destination("retry-attempts-1000", GOOD_EMAIL, ["'retry.max_attempts'"], {"retry.max_attempts": 1000}),
    destination("retry-multiplier-half", GOOD_EMAIL, ["'retry.multiplier'"], {"retry.multiplier": 0.5}),
    destination("retry-max-delay-huge", GOOD_EMAIL, ["'retry.max_delay_s'"], {"retry.max_delay_s": 1e9}),
    destination("retry-initial-bool", GOOD_EMAIL, ["'retry.initial_delay_s'"], {"retry.initial_delay_s": True}),
    # webhook
    destination("url-ftp", GOOD_WEBHOOK, ["'url'", "http"], {"url": "ftp://example.org/in"}),
    destination("url-token-query", GOOD_WEBHOOK, ["'url'", "'token'", "query_env"],
                {"url": "https://siem.example.org/in?token=abc"}),
    destination("url-api-key-query", GOOD_WEBHOOK, ["'url'", "X-Api-Key"],
                {"url": "https://siem.example.org/in?a=1&X-Api-Key=abc"}),
    destination("url-session-query", GOOD_WEBHOOK, ["'url'", "sessionid"],
                {"url": "https://siem.example.org/in?sessionid=abc"}),
    destination("url-credentials", GOOD_WEBHOOK, ["'url'", "credentials"],
                {"url": "https://user:pass@siem.example.org/in"}),
    destination("url-newline", GOOD_WEBHOOK, ["'url'"], {"url": "https://siem.example.org/in\n"}),
    destination("url-space", GOOD_WEBHOOK, ["'url'"], {"url": "https://siem.example.org/a b"}),
    destination("url-bad-port", GOOD_WEBHOOK, ["'url'", "port"], {"url": "https://siem.example.org:99999/in"}),
    destination("url-too-long", GOOD_WEBHOOK, ["'url'", "at most 2048"],
                {"url": "https://siem.example.org/" + "a" * 3000}),
    destination("url-no-host", GOOD_WEBHOOK, ["'url'"], {"url": "https://"}),
    destination("header-x-auth-token", GOOD_WEBHOOK, ["'headers'", "X-Auth-Token", "headers_env"],
                {"headers": {"X-Auth-Token": "abc"}}),
    destination("header-authorization", GOOD_WEBHOOK, ["'headers'", "Authorization"],
                {"headers": {"Authorization": "Bearer abc"}}),
    destination("header-cookie", GOOD_WEBHOOK, ["'headers'", "Cookie"], {"headers": {"Cookie": "a=b"}}),
    destination("header-signature", GOOD_WEBHOOK, ["'headers'", "X-Signature"], {"headers": {"X-Signature": "s"}}),
    destination("header-name-space", GOOD_WEBHOOK, ["'headers'", "token"], {"headers": {"Bad Header": "v"}}),
    destination("header-name-crlf", GOOD_WEBHOOK, ["'headers'"], {"headers": {"X-Test\r\nInjected": "v"}}),
    destination("header-value-crlf", GOOD_WEBHOOK, ["'headers'", "line break"],
                {"headers": {"X-Test": "a\r\nInjected: 1"}}),
    destination("header-value-non-ascii", GOOD_WEBHOOK, ["'headers'"], {"headers": {"X-Test": "\u00e4"}}),
    destination("header-reserved-webhook-id", GOOD_WEBHOOK, ["'headers'", "webhook-id"],
                {"headers": {"webhook-id": "forged"}}),
    destination("header-reserved-host", GOOD_WEBHOOK, ["'headers'", "Host"], {"headers": {"Host": "evil"}}),
    destination("header-reserved-length", GOOD_WEBHOOK, ["'headers'", "Content-Length"],
                {"headers": {"Content-Length": "5"}}),
    destination("headers-51", GOOD_WEBHOOK, ["'headers'", "at most 50"],
                {"headers": {f"X-H{i}": "v" for i in range(51)}}),
    destination("header-value-not-text", GOOD_WEBHOOK, ["'headers.X-Test'"], {"headers": {"X-Test": ["a"]}}),
    destination("headers-env-bad-variable", GOOD_WEBHOOK, ["'headers_env'", "environment variable"],
                {"headers_env": {"X-Token": "BAD NAME"}}),
    destination("headers-env-bad-name", GOOD_WEBHOOK, ["'headers_env'", "token"],
                {"headers_env": {"Bad Name": "TOKEN"}}),
    destination("headers-env-nul", GOOD_WEBHOOK, ["'headers_env.X-Token'", "U+0000"],
                {"headers_env": {"X-Token": "TO\x00KEN"}}),
    destination("header-in-both", GOOD_WEBHOOK, ["both"],
                {"headers": {"X-Tenant": "a"}, "headers_env": {"x-tenant": "TENANT"}}),
    destination("query-env-bad-name", GOOD_WEBHOOK, ["'query_env'"], {"query_env": {"bad name": "X"}}),
    destination("signing-secret-env-digit", GOOD_WEBHOOK, ["'signing_secret_env'"], {"signing_secret_env": "1ABC"}),
    destination("signing-secret-plaintext", GOOD_WEBHOOK, ["'signing_secret'", "signing_secret_env"],
                {"signing_secret": "s3cr3t"}),
    destination("token-plaintext", GOOD_WEBHOOK, ["'token'", "headers_env"], {"token": "abc"}),
    destination("method-get", GOOD_WEBHOOK, ["'method'"], {"method": "GET"}),
    destination("timeout-0", GOOD_WEBHOOK, ["'timeout_s'"], {"timeout_s": 0}),
    destination("timeout-1000", GOOD_WEBHOOK, ["'timeout_s'"], {"timeout_s": 1000}),
    destination("inline-negative", GOOD_WEBHOOK, ["'inline_max_kb'"], {"inline_max_kb": -1}),
    destination("inline-bool", GOOD_WEBHOOK, ["'inline_max_kb'"], {"inline_max_kb": True}),
    # storage
    destination("key-without-filename", GOOD_STORAGE, ["'key_template'", "{filename}"],
                {"key_template": "{report_id}/{period}/report"}),
    destination("key-double-slash", GOOD_STORAGE, ["'key_template'", "empty"],
                {"key_template": "{organization_id}//{filename}"}),
    destination("key-dot-dot", GOOD_STORAGE, ["'key_template'", "'..'"], {"key_template": "../{filename}"}),
    destination("key-backslash", GOOD_STORAGE, ["'key_template'", "backslash"], {"key_template": "a\\{filename}"}),
    destination("key-absolute", GOOD_STORAGE, ["'key_template'", "relative"], {"key_template": "/srv/{filename}"}),
    destination("key-trailing-slash", GOOD_STORAGE, ["'key_template'"], {"key_template": "{filename}/"}),
    destination("key-dot-segment", GOOD_STORAGE, ["'key_template'"], {"key_template": "./{filename}"}),
    destination("key-unknown-placeholder", GOOD_STORAGE, ["'key_template'", "unknown placeholder"],
                {"key_template": "{bucket}/{filename}"}),
    destination("key-attribute", GOOD_STORAGE, ["'key_template'"], {"key_template": "{filename.__class__}"}),
    destination("key-fill-slashes", GOOD_STORAGE, ["'key_template'"], {"key_template": "{period:/>30}/{filename}"}),
    destination("key-drive", GOOD_STORAGE, ["'key_template'"], {"key_template": "C:{filename}"}),
    destination("key-home", GOOD_STORAGE, ["'key_template'"], {"key_template": "~/{filename}"}),
    destination("key-too-long", GOOD_STORAGE, ["'key_template'", "at most 512"],
                {"key_template": "k" * 600 + "/{filename}"}),
    destination("key-nul", GOOD_STORAGE, ["'key_template'", "U+0000"], {"key_template": "a\x00/{filename}"}),
    destination("provider-ftp", GOOD_STORAGE, ["'provider'"], {"provider": "ftp"}),
    destination("s3-without-bucket", GOOD_STORAGE, ["bucket"], {"provider": "s3"}),
    destination("s3-bad-bucket", GOOD_STORAGE, ["'bucket'"], {"provider": "s3", "bucket": "Bad_Bucket"}),
    destination("s3-short-bucket", GOOD_STORAGE, ["'bucket'"], {"provider": "s3", "bucket": "ab"}),
    destination("local-with-bucket", GOOD_STORAGE, ["bucket"], {"bucket": "evidence"}),
    destination("endpoint-file", GOOD_STORAGE, ["'endpoint_url'"],
                {"provider": "s3", "bucket": "evidence", "endpoint_url": "file:///etc"}),
    destination("region-spaces", GOOD_STORAGE, ["'region'"], {"provider": "s3", "bucket": "evidence", "region": "EU Central"}),
    destination("access-key-plaintext", GOOD_STORAGE, ["'access_key_id'", "access_key_id_env"],
                {"provider": "s3", "bucket": "evidence", "access_key_id": "AKIA"}),
    destination("retention-0", GOOD_STORAGE, ["'retention_days'"], {"retention_days": 0}),
    destination("retention-million", GOOD_STORAGE, ["'retention_days'"], {"retention_days": 10**6}),
    destination("retention-bool", GOOD_STORAGE, ["'retention_days'"], {"retention_days": True}),
    # every type
    destination("type-pager", GOOD_STORAGE, ["'type'"], {"type": "pager"}),
    destination("type-missing", GOOD_STORAGE, ["'type'"], {"type": DELETE}),
    destination("name-uppercase", GOOD_STORAGE, ["'name'", "slug"], {"name": "New-Store"}),
    destination("name-too-long", GOOD_STORAGE, ["'name'", "at most 128"], {"name": "n" * 129}),
    destination("name-trailing-newline", GOOD_STORAGE, ["'name'"], {"name": "store\n"}),
    destination("description-nul", GOOD_STORAGE, ["'description'", "U+0000"], {"description": "a\x00b"}),
    destination("description-too-long", GOOD_STORAGE, ["'description'", "at most 2000"], {"description": "d" * 3000}),
    Case("destination-name-twice-in-file", ("destinations", "apply", "-f", "{file}"), ("'name'", "twice"),
         dump_yaml(GOOD_STORAGE) + "---\n" + dump_yaml(GOOD_STORAGE)),
    Case("destination-duplicate-yaml-key", ("destinations", "apply", "-f", "{file}"), ("duplicate key 'url'",),
         dump_yaml(GOOD_WEBHOOK) + "url: https://other.example.org/in\n"),
]

TEMPLATE_CASES = [
    template("frequency-hourly", ["'defaults.schedule.frequency'"], {"defaults.schedule": {"frequency": "hourly"}}),
    template("time-99", ["'defaults.schedule.time'"], {"defaults.schedule": {"frequency": "daily", "time": "99:99"}}),
    template("time-without-frequency", ["'defaults.schedule.time'"], {"defaults.schedule": {"time": "24:00"}}),
    template("formats-unknown", ["'defaults.formats.0'"], {"defaults.formats": ["docx"]}),
    template("report-type-unknown", ["'defaults.report_type'"], {"defaults.report_type": "sox"}),
    template("sets-id", ["'defaults'", "cannot set"], {"defaults.id": "x"}),
    template("sets-organization", ["'defaults'", "cannot set"], {"defaults.organization_id": "org-2"}),
    template("sets-created-by", ["'defaults'", "cannot set"], {"defaults.created_by": "admin"}),
    template("pdf-limit-huge", ["'defaults.options.pdf_event_limit'"], {"defaults.options": {"pdf_event_limit": 10**9}}),
    template("max-catch-up-true", ["'defaults.schedule.max_catch_up'"],
             {"defaults.schedule": {"frequency": "daily", "max_catch_up": True}}),
    template("day-of-week-monthly", ["'defaults.schedule'", "day_of_week"],
             {"defaults.schedule": {"frequency": "monthly", "day_of_week": "monday"}}),
    template("unknown-field", ["'defaults'", "colour"], {"defaults.colour": "blue"}),
    template("name-uppercase", ["'name'", "slug"], {"name": "Monthly"}),
    template("description-nul", ["'description'", "U+0000"], {"description": "a\x00"}),
    template("defaults-list", ["'defaults'"], {"defaults": ["a"]}),
    template("defaults-missing", ["'defaults'"], {"defaults": DELETE}),
    template("destination-bad-name", ["'defaults.destinations'", "slug"], {"defaults.destinations": ["Bad Name"]}),
    template("redact-string", ["'defaults.export.redact_identifiers'"], {"defaults.export": {"redact_identifiers": "yes!"}}),
    template("pattern-character-class", ["'defaults.options.action_categories'"],
             {"defaults.options": {"action_categories": {"phi_read": ["[x]"]}}}),
    Case("template-name-twice-in-file", ("templates", "apply", "-f", "{file}"), ("'name'", "twice"),
         dump_yaml(GOOD_TEMPLATE) + "---\n" + dump_yaml(GOOD_TEMPLATE)),
    Case("template-alias-bomb", ("templates", "apply", "-f", "{file}"), ("more than 20000 values",), ALIAS_BOMB),
]

LONG = "x" * 300
CLI_CASES = [
    cli("show-nul", ["REPORT_ID"], "reports", "show", "r\x00good"),
    cli("show-too-long", ["REPORT_ID", "at most 128"], "reports", "show", "r" * 300),
    cli("show-trailing-newline", ["REPORT_ID"], "reports", "show", "r-good\n"),
    cli("show-missing-argument", ["REPORT_ID"], "reports", "show"),
    cli("enable-uppercase", ["REPORT_ID"], "reports", "enable", "R-GOOD"),
    cli("disable-pipe", ["REPORT_ID"], "reports", "disable", "r|good"),
    cli("unschedule-nul", ["REPORT_ID"], "reports", "unschedule", "r-good\x00"),
    cli("delete-space", ["REPORT_ID"], "reports", "delete", "r good", "--yes"),
    cli("next-runs-zero", ["-n"], "reports", "next-runs", "r-good", "-n", "0"),
    cli("next-runs-year-9999", ["--after"], "reports", "next-runs", "r-good", "--after", "9999-12-31T00:00:00"),
    cli("run-now-month-13", ["--period"], "reports", "run-now", "r-good", "--period", "2026-13-01"),
    cli("run-now-year-9999", ["--period"], "reports", "run-now", "r-good", "--period", "9999-12-27"),
    cli("run-now-period-newline", ["--period"], "reports", "run-now", "r-good", "--period", "2026-11-27\n"),
    cli("run-now-period-not-ended", ["--period", "has not ended"], "reports", "run-now", "r-good", "--period", "2999-01-01"),
    cli("apply-as-too-long", ["--as", "at most 255"], "reports", "apply", "-f", "{tmp}/none.yaml", "--as", LONG),
    cli("apply-as-newline", ["--as"], "reports", "apply", "-f", "{tmp}/none.yaml", "--as", "alice\nbob"),
    cli("apply-without-file", ["--file"], "templates", "apply"),
    cli("run-nul", ["REPORT_ID"], "run", "r\x00"),
    cli("history-space", ["REPORT_ID"], "history", "x y"),
    cli("deliveries-report-nul", ["--report"], "deliveries", "list", "--report", "A\x00"),
    cli("deliveries-status-bogus", ["--status"], "deliveries", "list", "--status", "bogus"),
    cli("deliveries-retry-not-hex", ["--id", "hexadecimal"], "deliveries", "retry", "--id", "zz"),
    cli("deliveries-retry-nul", ["--id"], "deliveries", "retry", "--id", "a\x00"),
    cli("integrity-org-nul", ["--org"], "integrity", "verify", "--org", "o\x00", "--from", "2026-01-01", "--to", "2026-01-02"),
    cli("integrity-org-too-long", ["--org", "at most 255"], "integrity", "verify", "--org", LONG,
        "--from", "2026-01-01", "--to", "2026-01-02"),
    cli("integrity-org-newline", ["--org"], "integrity", "verify", "--org", "org-1\n",
        "--from", "2026-01-01", "--to", "2026-01-02"),
    cli("integrity-from-9999", ["--from"], "integrity", "verify", "--org", "org-1",
        "--from", "9999-12-31", "--to", "9999-12-31T23:00"),
    cli("integrity-to-9999", ["--to"], "integrity", "verify", "--org", "org-1",
        "--from", "2026-01-01", "--to", "9999-12-31T23:59"),
    cli("integrity-from-year-1", ["--from"], "integrity", "verify", "--org", "org-1",
        "--from", "0001-01-01", "--to", "2026-01-01"),
    cli("integrity-timezone", ["--timezone"], "integrity", "verify", "--org", "org-1",
        "--from", "2026-01-01", "--to", "2026-01-02", "--timezone", "Mars/Olympus"),
    cli("integrity-feb-30", ["--from"], "integrity", "verify", "--org", "org-1", "--from", "2026-02-30", "--to", "2026-03-02"),
    cli("integrity-to-before-from", ["--to"], "integrity", "verify", "--org", "org-1", "--from", "2026-02-01", "--to", "2026-01-01"),
    cli("integrity-checkpoint-key-not-utf8", ["COMPLIANCE_CHECKPOINT_KEY", "UTF-8"], "integrity", "verify",
        "--org", "org-1", "--from", "2026-01-01", "--to", "2026-01-02", env={"COMPLIANCE_CHECKPOINT_KEY": "k\udcff"}),
    cli("decrypt-key-env-space", ["--key-env"], "decrypt", "{tmp}/f.enc", "--key-env", "BAD NAME"),
    cli("decrypt-lenient-base64-key", ["CR_TEST_KEY", "32-byte"], "decrypt", "{tmp}/f.enc", "--key-env", "CR_TEST_KEY",
        env={"CR_TEST_KEY": "!!!!" + 43 * "A" + "$$$"}),
    cli("decrypt-key-33-bytes", ["CR_TEST_KEY", "32-byte"], "decrypt", "{tmp}/f.enc", "--key-env", "CR_TEST_KEY",
        env={"CR_TEST_KEY": "AAAA" * 11}),
    cli("decrypt-output-nul", ["--output", "NUL"], "decrypt", "{tmp}/f.enc", "-o", "{tmp}/o\x00ut"),
    cli("verify-manifest-folder-nul", ["FOLDER", "NUL"], "verify-manifest", "{tmp}/x\x00"),
    cli("verify-manifest-key-env-nul", ["--key-env"], "verify-manifest", "{tmp}", "--key-env", "X\x00"),
    cli("verify-manifest-key-not-utf8", ["CR_TEST_MKEY", "UTF-8"], "verify-manifest", "{tmp}", "--key-env", "CR_TEST_MKEY",
        env={"CR_TEST_MKEY": "0123456789abcdef\udcff"}),
    cli("unknown-command", ["No such command"], "reports", "explode"),
    cli("unknown-option", ["--bogus"], "--bogus"),
    # the arguments that make data rows (demo traffic)
    cli("seed-end-date-9999", ["--end-date", "2999-12-31"], "demo", "seed", "--end-date", "9999-12-31"),
    cli("seed-end-date-month-13", ["--end-date"], "demo", "seed", "--end-date", "2026-13-01"),
    cli("seed-orgs-0", ["--orgs"], "demo", "seed", "--orgs", "0"),
    cli("seed-days-0", ["--days"], "demo", "seed", "--days", "0"),
    cli("seed-events-0", ["--events-per-day"], "demo", "seed", "--events-per-day", "0"),
    cli("seed-tamper-negative", ["--tamper"], "demo", "seed", "--tamper", "-1"),
]

ALL_CASES = REPORT_CASES + DESTINATION_CASES + TEMPLATE_CASES + CLI_CASES

# Schedule requests as the CLI (or any caller of config.store.request) would write them:
# refused by the same model the sensor applies, before anything is inserted.
REQUEST_CASES = {
    "report-id-nul": (dict(report_id="r-good\x00", action="run_now"), "report_id"),
    "report-id-too-long": (dict(report_id="r" * 300, action="run_now"), "report_id"),
    "report-id-pipe": (dict(report_id="r|good", action="run_now"), "report_id"),
    "action-unknown": (dict(report_id="r-good", action="explode"), "action"),
    "period-newline": (dict(report_id="r-good", action="run_now", period="2026-11-27\n"), "period"),
    "period-year-9999": (dict(report_id="r-good", action="run_now", period="9999-12-27"), "period"),
    "period-dotted": (dict(report_id="r-good", action="run_now", period="27.11.2026"), "period"),
    "requested-by-too-long": (dict(report_id="r-good", action="schedule", actor="a" * 300), "requested_by"),
    "requested-by-nul": (dict(report_id="r-good", action="schedule", actor="a\x00"), "requested_by"),
}

# Rows another system inserts directly; the sensor must fail each one, naming the field, and
# request nothing. Only values both databases can store (PostgreSQL refuses NUL on insert).
SENSOR_ROWS = {
    "unknown-action": (dict(report_id="r-good", action="explode", period=None), "action"),
    "period-not-a-date": (dict(report_id="r-good", action="run_now", period="2026-11-2"), "period"),
    "period-month-13": (dict(report_id="r-good", action="run_now", period="2026-13-01"), "period"),
    "period-before-partitions": (dict(report_id="r-good", action="run_now", period="1999-01-01"), "period"),
    "period-not-ended": (dict(report_id="r-good", action="run_now", period="2999-01-01"), "period"),
    "report-id-pipe": (dict(report_id="r|good", action="run_now", period=None), "report_id"),
    "report-id-uppercase": (dict(report_id="R-GOOD", action="schedule", period=None), "report_id"),
    "requested-by-control": (dict(report_id="r-good", action="run_now", period=None,
                                  requested_by="bot\x1b[31m"), "requested_by"),
}
