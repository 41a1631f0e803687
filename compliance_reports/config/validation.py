"""The checks behind the configuration models: names, lengths, addresses, headers, templates.

Everything the run and the delivery will later need is checked here once, at apply, so that a
configuration that was stored can run: a value that would fail in PostgreSQL (a NUL byte, a
string longer than its column), in the SMTP or HTTP library (CR/LF in a header, two addresses
in one entry) or in a template (`{__class__}`, a width of a billion) is refused with a message
that names it. Every regular expression is matched against the whole string (`fullmatch`), so a
trailing newline never slips through.

The functions raise ValueError with a one-line message; the models turn that into a field error.
"""

from __future__ import annotations

import ipaddress
import re
import string
from datetime import date
from email.headerregistry import Address
from typing import Annotated, Any, Mapping
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field, Strict

# Column sizes of db/schema.py: what a value must fit at apply, not fail in PostgreSQL later.
MAX_ID = 128          # report_configs.id, destinations.name, report_templates.name
MAX_NAME = 255        # report_configs.name, organization_id, created_by; audit_log string columns
MAX_TEXT = 2000       # descriptions (stored inside the JSON document)
MAX_ENV_NAME = 128
MAX_LIST = 1000       # entries of a criteria list
MAX_RECIPIENTS = 100  # addresses per to / cc / bcc
MAX_REFERENCES = 50   # destinations / notify_on_failure of one report
MAX_HEADERS = 50
MAX_HEADER_VALUE = 4096
MAX_URL = 2048
MAX_TEMPLATE = 512    # mail subject and storage key templates
MAX_FORMAT_WIDTH = 64  # width or precision inside a {field:spec}
MAX_CATEGORIES = 32
MAX_PATTERNS_PER_CATEGORY = 64
MAX_PATTERNS = 512
# Dates the period and slot maths handle without overflowing (year 9999 + one period does not).
DATE_MIN = date(1900, 1, 1)
DATE_MAX = date(2999, 12, 31)

SLUG_RE = re.compile(r"[a-z0-9][a-z0-9_-]*")
ORG_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
ENV_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
TIME_RE = re.compile(r"([01][0-9]|2[0-3]):[0-5][0-9]")
CATEGORY_RE = re.compile(r"[a-z][a-z0-9_]*")
TIMEZONE_RE = re.compile(r"[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*")
HEADER_NAME_RE = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 7230 token
HEADER_VALUE_RE = re.compile(r"[\x20-\x7e\t]*")              # visible ASCII, space, tab
HOST_RE = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))*\.?")
DOMAIN_RE = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)(\.(?!-)[A-Za-z0-9-]{1,63}(?<!-))+")
BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
REGION_RE = re.compile(r"[a-z0-9][a-z0-9-]{0,31}")
_FORMAT_SPEC_RE = re.compile(
    r"(?:(?P<fill>[^{}])?(?P<align>[<>=^]))?(?P<sign>[-+ ])?(?P<alt>#)?(?P<zero>0)?"
    r"(?P<width>[0-9]+)?(?P<grouping>[,_])?(?:\.(?P<precision>[0-9]+))?(?P<type>s)?"
)

# Characters refused in names and identifiers: C0 and C1 controls, DEL, line and paragraph
# separators, bidirectional overrides (they make a name read differently from what it is).
_NAME_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
# In free text (descriptions) tab and line breaks are fine, other controls are not.
_TEXT_FORBIDDEN = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")

# Parts of a header or query-parameter name that say it carries a credential.
CREDENTIAL_WORDS = ("token", "key", "secret", "signature", "password", "auth", "session", "cookie")
# Headers the webhook channel sets itself, or that would change how the request is framed.
RESERVED_HEADERS = {
    "content-type", "webhook-id", "webhook-timestamp", "webhook-signature", "idempotency-key",
    "host", "content-length", "transfer-encoding", "connection", "te", "upgrade", "expect",
}

SUBJECT_PLACEHOLDERS = ("report_name", "report_id", "period", "period_label", "organization_id")
KEY_PLACEHOLDERS = ("organization_id", "report_id", "period", "format", "filename", "run_id")
# The longest value each placeholder can take, so a rendered template is checked at its worst.
_DUMMY_FIELDS = {
    "report_name": "N" * MAX_NAME,
    "report_id": "r" * MAX_ID,
    "period": "2026-01-01",
    "period_label": "Week 53 (28 December 2026 - 3 January 2027)",
    "organization_id": "o" * MAX_NAME,
    "format": "parquet",
    "filename": "f" * MAX_ID + "_2026-01-01.parquet.gz.enc",
    "run_id": "0" * 36,
}


def _describe(char: str) -> str:
    return f"U+{ord(char):04X}"


def check_storable(value: str, what: str) -> str:
    """Text PostgreSQL and UTF-8 can hold: no NUL, no lone surrogate, no other C0 control."""
    if (bad := _SURROGATE.search(value)) is not None:
        raise ValueError(f"{what} holds a lone surrogate ({_describe(bad.group())}), which is not UTF-8")
    if (bad := _TEXT_FORBIDDEN.search(value)) is not None:
        raise ValueError(f"{what} holds the control character {_describe(bad.group())}")
    return value


def check_name(value: str, what: str, max_length: int = MAX_NAME) -> str:
    """A one-line name: 1..max_length characters, no control or bidirectional characters."""
    check_storable(value, what)
    if not value.strip():
        raise ValueError(f"{what} is empty")
    if len(value) > max_length:
        raise ValueError(f"{what} is {len(value)} characters long; at most {max_length}")
    if (bad := _NAME_FORBIDDEN.search(value)) is not None:
        raise ValueError(f"{what} holds the control character {_describe(bad.group())}")
    return value


def check_text(value: str, what: str, max_length: int = MAX_TEXT) -> str:
    check_storable(value, what)
    if len(value) > max_length:
        raise ValueError(f"{what} is {len(value)} characters long; at most {max_length}")
    return value


def check_slug(value: str, what: str) -> str:
    if len(value) > MAX_ID:
        raise ValueError(f"{what} is {len(value)} characters long; at most {MAX_ID}")
    if not SLUG_RE.fullmatch(value):
        raise ValueError(
            f"{what} {value!r} must be a slug: lowercase letters, digits, '-' and '_' "
            "(no spaces, no '|')"
        )
    return value


def check_organization_id(value: str, what: str = "organization_id") -> str:
    if len(value) > MAX_NAME:
        raise ValueError(f"{what} is {len(value)} characters long; at most {MAX_NAME}")
    if not ORG_RE.fullmatch(value):
        raise ValueError(f"{what} {value!r} may hold letters, digits, '.', '_', ':' and '-' only")
    return value


def check_env_name(value: str, what: str = "environment variable name") -> str:
    if len(value) > MAX_ENV_NAME or not ENV_NAME_RE.fullmatch(value):
        raise ValueError(
            f"{what} {value!r} is not an environment variable name (letters, digits and '_', "
            f"not starting with a digit, at most {MAX_ENV_NAME} characters)"
        )
    return value


def check_time(value: str, what: str = "time") -> str:
    if not TIME_RE.fullmatch(value):
        raise ValueError(f"{what} {value!r} must be HH:MM on a 24-hour clock (00:00 to 23:59)")
    return value


def check_timezone(value: str) -> str:
    if len(value) > 64 or not TIMEZONE_RE.fullmatch(value) or ".." in value:
        raise ValueError(f"unknown IANA timezone {value!r} (e.g. Europe/Berlin)")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise ValueError(f"unknown IANA timezone {value!r} (e.g. Europe/Berlin)") from None
    return value


def check_date(value: Any, what: str) -> Any:
    """A calendar date (YAML date or 'YYYY-MM-DD') between DATE_MIN and DATE_MAX."""
    if isinstance(value, str):
        if not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
            raise ValueError(f"{what} {value!r} must be a date YYYY-MM-DD")
        try:
            value = date.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{what} {value!r} is not a calendar date") from None
    if type(value) is not date:  # a datetime or a number is not a date
        raise ValueError(f"{what} must be a date YYYY-MM-DD, not {type(value).__name__}")
    if not DATE_MIN <= value <= DATE_MAX:
        raise ValueError(f"{what} {value.isoformat()} is outside {DATE_MIN} to {DATE_MAX}")
    return value


def check_hex_id(value: str, what: str) -> str:
    if not re.fullmatch(r"[0-9a-f]{1,64}", value):
        raise ValueError(f"{what} {value!r} must be lowercase hexadecimal, at most 64 characters")
    return value


def check_actor(value: str, what: str = "created_by") -> str:
    """Who applied a configuration: a one-line name that fits its column."""
    return check_name(value, what, MAX_NAME)


def check_unique(values: list[str], what: str) -> list[str]:
    seen = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{what} lists {value!r} twice")
        seen.add(value)
    return values


def check_day_of_month(value: Any) -> Any:
    """1-31 or 'last'; a boolean, a float or another word is refused before pydantic reads it."""
    if value is None or value == "last":
        return value
    if type(value) is not int:
        raise ValueError(f"day_of_month {value!r} must be a day 1 to 31, or 'last'")
    if not 1 <= value <= 31:
        raise ValueError(f"day_of_month {value} must be between 1 and 31, or 'last'")
    return value


def check_action_categories(value: dict[str, list[str]]) -> dict[str, list[str]]:
    """Category overrides the run can compile: bounded, named, with `*`/`?` patterns only."""
    from compliance_reports.audit.action_categories import (
        UNCATEGORISED,
        resolve_categories,
        validate_pattern,
    )

    total = 0
    for name, patterns in value.items():
        if len(name) > 64 or not CATEGORY_RE.fullmatch(name):
            raise ValueError(
                f"category name {name!r} must be lowercase letters, digits and '_' "
                "(at most 64 characters)"
            )
        if name == UNCATEGORISED:
            raise ValueError(f"category '{UNCATEGORISED}' is reserved for actions no category matches")
        if len(patterns) > MAX_PATTERNS_PER_CATEGORY:
            raise ValueError(
                f"category {name!r} has {len(patterns)} patterns; at most {MAX_PATTERNS_PER_CATEGORY}"
            )
        total += len(patterns)
        for pattern in patterns:
            try:
                validate_pattern(pattern)
            except ValueError as exc:
                raise ValueError(f"category {name!r}: {exc}") from None
    if total > MAX_PATTERNS:
        raise ValueError(f"{total} action patterns in all; at most {MAX_PATTERNS}")
    resolve_categories(value)  # what the run compiles, compiled once here
    return value


# ---------------------------------------------------------------- addresses and URLs


def check_email(value: str) -> str:
    """Exactly one plain address (no display name, no list), parsed by the standard library."""
    check_storable(value, "email address")
    if "\r" in value or "\n" in value:
        raise ValueError(f"{value!r} is not an email address (it holds a line break)")
    if len(value) > 254:
        raise ValueError(f"email address is {len(value)} characters long; at most 254")
    try:
        address = Address(addr_spec=value)
    except (ValueError, IndexError, TypeError) as exc:
        detail = " ".join(str(exc).split()) or "cannot be parsed"
        raise ValueError(f"{value!r} is not one email address: {detail}") from None
    if address.addr_spec != value or not value.isascii():
        raise ValueError(f"{value!r} is not one plain ASCII email address (user@example.org)")
    if not DOMAIN_RE.fullmatch(address.domain):
        raise ValueError(f"{value!r}: the domain {address.domain!r} is not a host name with a dot")
    return value


def check_host(value: str, what: str = "host") -> str:
    """A host name or an IP address, nothing else (no port, no scheme, no spaces)."""
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if len(value) > 253 or not HOST_RE.fullmatch(value):
        raise ValueError(f"{what} {value!r} is not a host name or an IP address")
    return value


def check_bucket(value: str) -> str:
    if not BUCKET_RE.fullmatch(value) or ".." in value:
        raise ValueError(
            f"bucket {value!r} is not an S3 bucket name (3-63 lowercase letters, digits, '.' and '-')"
        )
    return value


def check_region(value: str) -> str:
    if not REGION_RE.fullmatch(value):
        raise ValueError(f"region {value!r} is not a region name (e.g. eu-central-1)")
    return value


def is_credential_name(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in CREDENTIAL_WORDS)


def check_http_url(value: str, what: str = "url") -> str:
    """An http(s) URL without credentials, control characters or credential-looking query
    parameters (those come from the environment)."""
    check_storable(value, what)
    if len(value) > MAX_URL:
        raise ValueError(f"{what} is {len(value)} characters long; at most {MAX_URL}")
    if any(ch.isspace() for ch in value) or _NAME_FORBIDDEN.search(value):
        raise ValueError(f"{what} {value!r} holds whitespace or a control character")
    parsed = urlsplit(value)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValueError(f"{what} {value!r} must be an http:// or https:// URL with a host")
    if parsed.username is not None or parsed.password is not None:
        raise ValueError(f"{what} must not carry credentials (user:password@); use headers_env")
    try:
        parsed.port
    except ValueError:
        raise ValueError(f"{what} {value!r} has an invalid port") from None
    for name, _ in parse_qsl(parsed.query, keep_blank_values=True):
        if is_credential_name(name):
            raise ValueError(
                f"{what} query parameter {name!r} looks like a credential; name the environment "
                f"variable that holds it in query_env ({name}: ENV_VAR) or send it as a header "
                "through headers_env"
            )
    return value


# ---------------------------------------------------------------- headers


def check_header_name(name: str, what: str = "header") -> str:
    if len(name) > 128 or not HEADER_NAME_RE.fullmatch(name):
        raise ValueError(
            f"{what} name {name!r} is not an HTTP token (letters, digits and !#$%&'*+-.^_`|~)"
        )
    if name.lower() in RESERVED_HEADERS:
        raise ValueError(f"{what} {name!r} is set by compliance-reports itself and cannot be configured")
    return name


def check_header_value(name: str, value: str) -> str:
    if len(value) > MAX_HEADER_VALUE:
        raise ValueError(f"header {name!r} value is {len(value)} characters long; at most {MAX_HEADER_VALUE}")
    if not HEADER_VALUE_RE.fullmatch(value):
        raise ValueError(
            f"header {name!r} value holds a line break, a control or a non-ASCII character"
        )
    return value


def check_literal_headers(headers: Mapping[str, str]) -> Mapping[str, str]:
    if len(headers) > MAX_HEADERS:
        raise ValueError(f"{len(headers)} headers; at most {MAX_HEADERS}")
    for name, value in headers.items():
        check_header_name(name)
        if is_credential_name(name):
            raise ValueError(
                f"header {name!r} looks like a credential ({'/'.join(CREDENTIAL_WORDS)}); set it "
                f"through headers_env ({name}: ENV_VAR_NAME) instead of writing its value"
            )
        check_header_value(name, value)
    return headers


def check_env_mapping(mapping: Mapping[str, str], what: str, name_check) -> Mapping[str, str]:
    if len(mapping) > MAX_HEADERS:
        raise ValueError(f"{len(mapping)} entries; at most {MAX_HEADERS}")
    for name, env in mapping.items():
        name_check(name)
        check_env_name(env, f"{what} {name!r}: environment variable name")
    return mapping


def check_query_name(name: str, what: str = "query parameter") -> str:
    if len(name) > 128 or not re.fullmatch(r"[A-Za-z0-9._~-]+", name):
        raise ValueError(f"{what} name {name!r} may hold letters, digits, '.', '_', '~' and '-' only")
    return name


# ---------------------------------------------------------------- templates


def _check_spec(spec: str, name: str, what: str) -> None:
    match = _FORMAT_SPEC_RE.fullmatch(spec)
    if match is None:
        raise ValueError(f"{what}: format spec {spec!r} of {{{name}}} is not a plain text format")
    for part in ("width", "precision"):
        number = match.group(part)
        if number is not None and int(number) > MAX_FORMAT_WIDTH:
            raise ValueError(
                f"{what}: {part} {int(number)} in {{{name}:{spec}}} is larger than {MAX_FORMAT_WIDTH}"
            )
    if match.group("fill") and _NAME_FORBIDDEN.search(match.group("fill")):
        raise ValueError(f"{what}: the fill character of {{{name}}} is a control character")
    if match.group("sign") or match.group("alt") or match.group("grouping") or match.group("zero"):
        raise ValueError(f"{what}: {{{name}:{spec}}} uses a numeric format on a text value")


def render_template(template: str, fields: Mapping[str, object], allowed, what: str) -> str:
    """Fill `{name}` and `{name:spec}` from `allowed` placeholders only.

    No attribute or index access (`{report_name.__class__}`, `{0}`), no conversions (`!r`), no
    nested fields, and widths and precisions of at most MAX_FORMAT_WIDTH. The run renders with
    this same function, so a template that passed at apply renders at send time.
    """
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise ValueError(f"{what} {template!r} is malformed: {exc}") from None
    out = []
    for literal, name, spec, conversion in parsed:
        out.append(literal)
        if name is None:
            continue
        if name not in allowed:
            raise ValueError(
                f"{what} uses unknown placeholder {{{name}}}; allowed: "
                + ", ".join("{" + a + "}" for a in allowed)
            )
        if conversion:
            raise ValueError(f"{what}: conversion !{conversion} in {{{name}}} is not allowed")
        value = "" if fields.get(name) is None else str(fields[name])
        if spec:
            _check_spec(spec, name, what)
            value = format(value, spec)
        out.append(value)
    return "".join(out)


def check_subject_template(value: str) -> str:
    check_name(value, "subject", MAX_TEMPLATE)
    rendered = render_template(value, _DUMMY_FIELDS, SUBJECT_PLACEHOLDERS, "subject")
    if "\r" in rendered or "\n" in rendered:
        raise ValueError("subject must be one line")
    return value


def check_key_template(value: str) -> str:
    """A relative key with {filename}: no backslash, no empty, '.' or '..' segment."""
    check_name(value, "key_template", MAX_TEMPLATE)
    if "\\" in value:
        raise ValueError("key_template must not contain a backslash")
    if value.startswith(("/", "~")) or re.match(r"[A-Za-z]:", value):
        raise ValueError("key_template must be a relative path (no leading '/', '~' or drive)")
    rendered = render_template(value, _DUMMY_FIELDS, KEY_PLACEHOLDERS, "key_template")
    names = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    if "filename" not in names:
        raise ValueError("key_template must contain {filename}, so every file gets its own key")
    for segment in rendered.split("/"):
        if segment in ("", ".", ".."):
            raise ValueError(
                f"key_template {value!r} gives an empty, '.' or '..' path segment; "
                "keys must stay inside the base"
            )
    return value


# ---------------------------------------------------------------- pydantic types


def _after(check, *args):
    return AfterValidator(lambda value: check(value, *args))


StrictStr = Annotated[str, Strict()]
StrictBool = Annotated[bool, Strict()]


def bounded_int(ge: int, le: int, default: int | None = None) -> Any:
    """An integer field that refuses booleans and floats (`max_catch_up: true` is not 1)."""
    return Field(default=default, strict=True, ge=ge, le=le)


def bounded_float(gt: float, le: float, default: float, ge: float | None = None) -> Any:
    """A finite number field; integers are accepted, booleans are not."""
    if ge is not None:
        return Field(default=default, strict=True, ge=ge, le=le, allow_inf_nan=False)
    return Field(default=default, strict=True, gt=gt, le=le, allow_inf_nan=False)


Slug = Annotated[StrictStr, _after(check_slug, "name")]
Name = Annotated[StrictStr, _after(check_name, "name", MAX_NAME)]
Text = Annotated[StrictStr, _after(check_text, "text", MAX_TEXT)]
EnvName = Annotated[StrictStr, _after(check_env_name, "environment variable name")]
Hhmm = Annotated[StrictStr, _after(check_time, "time")]
EmailAddress = Annotated[StrictStr, AfterValidator(check_email)]
CriterionValue = Annotated[StrictStr, _after(check_name, "criteria value", MAX_NAME)]
ConfigDate = Annotated[date, BeforeValidator(lambda value: check_date(value, "date"))]
