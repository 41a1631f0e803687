"""Action categories: which audit actions count as PHI reads, authentication, disclosures, ...

Categories are data, not substring checks scattered through the builders: a mapping
category -> fnmatch patterns (``*`` any run of characters, ``?`` one character). A report may
override a category through ``options.action_categories`` (the given patterns *replace* that
category's defaults; a new category name is appended after the built-in ones).

Precedence: an action belongs to the FIRST category, in ``CATEGORY_ORDER`` (then custom
categories in alphabetical order), that has a matching pattern. So with the defaults
``fhir.patient.read`` is ``phi_read``, ``admin.role.grant`` is ``privileged_change`` and an action
no pattern matches is ``other`` (``UNCATEGORISED``).

Authentication is split into kinds that are counted apart (``AUTHENTICATION_KINDS``): logins,
MFA challenges, logouts and lockouts come before the catch-all ``authentication`` (``auth.*``), so
``auth.logout`` is ``logout`` and an ``auth.token.refresh`` stays ``authentication``. The
defaults follow the actions the demo traffic writes (``auth.login``, ``auth.mfa.challenge``,
``auth.logout``); a source system that names them differently overrides the kind
(``{login: ["user.signin"]}``).

Matching is case-insensitive for ASCII letters (both sides are lower-cased: SQLite's LIKE is
case-insensitive and PostgreSQL's is not, so lower-casing is what makes them agree) and
otherwise exact. Character classes (``[abc]``) are refused because LIKE cannot express them.

The same mapping runs in two places that must agree, and the tests check that they do:
``categorize`` (Python, used for single values) and ``category_case`` (a SQL ``CASE`` of
``LIKE ... ESCAPE '\\'`` clauses, so grouping by category stays in the database). In the LIKE
translation ``*`` -> ``%``, ``?`` -> ``_``, and a literal ``%``, ``_`` or ``\\`` is escaped with ``\\``.

When the actions a statement can meet are known (a report window's distinct actions, read
once), the patterns are resolved in Python instead: ``action_map`` gives each action its
category with ``categorize`` and ``mapped_condition``/``mapped_case`` compare the action with
the few actions of a category (``action IN (...)``), so no row evaluates a LIKE.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from fnmatch import fnmatchcase

from sqlalchemy import and_, case, false, func, literal, not_, or_
from sqlalchemy.sql.elements import ColumnElement

UNCATEGORISED = "other"
LIKE_ESCAPE = "\\"

# Fixed precedence order of the built-in categories.
CATEGORY_ORDER: tuple[str, ...] = (
    "login",
    "mfa",
    "logout",
    "lockout",
    "authentication",
    "phi_read",
    "phi_write",
    "disclosure",
    "export",
    "privileged_change",
    "audit_config_change",
    "emergency_access",
    "consent",
    "data_subject_request",
    "transfer",
    "breach",
)

# The authentication kinds, in CATEGORY_ORDER order, the catch-all last.
AUTHENTICATION_KINDS: tuple[str, ...] = ("login", "mfa", "logout", "lockout", "authentication")

DEFAULT_CATEGORIES: dict[str, tuple[str, ...]] = {
    "login": ("auth.login", "auth.login.*"),
    "mfa": ("auth.mfa", "auth.mfa.*"),
    "logout": ("auth.logout", "auth.logout.*"),
    "lockout": ("auth.lockout", "auth.lockout.*", "auth.account.lock*"),
    "authentication": ("auth.*",),
    "phi_read": ("fhir.*.read",),
    "phi_write": ("fhir.*.create", "fhir.*.update", "fhir.*.delete"),
    "disclosure": ("phi.disclosure", "record.share"),
    "export": ("data.export",),
    "privileged_change": ("admin.*",),
    "audit_config_change": ("audit.config.*", "audit.retention.*"),
    "emergency_access": ("emergency.*",),
    "consent": ("consent.*",),
    "data_subject_request": ("dsr.*",),
    "transfer": ("data.transfer.*",),
    "breach": ("security.breach.*",),
}

CATEGORY_TITLES: dict[str, str] = {
    "login": "Login",
    "mfa": "Multi-factor authentication",
    "logout": "Logout",
    "lockout": "Account lockout",
    "authentication": "Other authentication",
    "phi_read": "PHI read",
    "phi_write": "PHI create/update/delete",
    "disclosure": "Disclosure",
    "export": "Data export",
    "privileged_change": "Privileged change",
    "audit_config_change": "Audit configuration change",
    "emergency_access": "Emergency (break-glass) access",
    "consent": "Consent",
    "data_subject_request": "Data-subject request",
    "transfer": "Cross-border transfer",
    "breach": "Security breach",
    UNCATEGORISED: "Other",
}

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def ascii_lower(value: str) -> str:
    """Lower-case ASCII letters only: what SQLite's lower() does (PostgreSQL's agrees on ASCII)."""
    return value.translate(_ASCII_LOWER)


MAX_PATTERN_LENGTH = 255  # audit_log.action is VARCHAR(255): a longer pattern matches nothing
MAX_WILDCARDS = 16
_PATTERN_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")


def validate_pattern(pattern: str) -> str:
    """A pattern both matchers understand: non-empty, `*` and `?` the only wildcards."""
    if not isinstance(pattern, str) or not pattern:
        raise ValueError(f"action pattern must be a non-empty string, got {pattern!r}")
    if len(pattern) > MAX_PATTERN_LENGTH:
        raise ValueError(
            f"action pattern is {len(pattern)} characters long; at most {MAX_PATTERN_LENGTH}"
        )
    if "[" in pattern or "]" in pattern:
        raise ValueError(
            f"action pattern {pattern!r} uses a character class ('[...]'), which is not supported; "
            "use '*' and '?' only"
        )
    if (bad := _PATTERN_FORBIDDEN.search(pattern)) is not None:
        raise ValueError(
            f"action pattern {pattern!r} holds U+{ord(bad.group()):04X}, a control character "
            "or a lone surrogate"
        )
    if pattern.count("*") + pattern.count("?") > MAX_WILDCARDS:
        raise ValueError(f"action pattern {pattern!r} has more than {MAX_WILDCARDS} wildcards")
    return pattern


def resolve_categories(
    overrides: Mapping[str, Sequence[str]] | None = None,
) -> dict[str, tuple[str, ...]]:
    """The effective ordered mapping: defaults with per-category replacements, then new ones."""
    overrides = dict(overrides or {})
    resolved: dict[str, tuple[str, ...]] = {}
    for name in CATEGORY_ORDER:
        patterns = overrides.pop(name, None)
        resolved[name] = tuple(patterns) if patterns is not None else DEFAULT_CATEGORIES[name]
    for name in sorted(overrides):
        if name == UNCATEGORISED:
            raise ValueError(f"'{UNCATEGORISED}' is reserved for actions no category matches")
        resolved[name] = tuple(overrides[name])
    for name, patterns in resolved.items():
        for pattern in patterns:
            validate_pattern(pattern)
    return resolved


def fnmatch_to_like(pattern: str) -> str:
    """Translate an fnmatch pattern (``*``, ``?``) into a LIKE pattern with ``\\`` as escape."""
    validate_pattern(pattern)
    out = []
    for ch in ascii_lower(pattern):
        if ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        elif ch in ("%", "_", LIKE_ESCAPE):
            out.append(LIKE_ESCAPE + ch)
        else:
            out.append(ch)
    return "".join(out)


def matches(action: str, pattern: str) -> bool:
    """The Python reference for one pattern (case-insensitive on ASCII, like the SQL)."""
    return fnmatchcase(ascii_lower(action), ascii_lower(validate_pattern(pattern)))


def categorize(action: str | None, categories: Mapping[str, Sequence[str]] | None = None) -> str:
    categories = resolve_categories() if categories is None else categories
    if action is None:
        return UNCATEGORISED
    for name, patterns in categories.items():
        if any(matches(action, p) for p in patterns):
            return name
    return UNCATEGORISED


def pattern_condition(column: ColumnElement, patterns: Sequence[str]) -> ColumnElement:
    """SQL: the column matches any of the patterns (a bound LIKE parameter per pattern)."""
    if not patterns:
        return false()
    lowered = func.lower(column)
    return or_(*(lowered.like(fnmatch_to_like(p), escape=LIKE_ESCAPE) for p in patterns))


def category_condition(
    column: ColumnElement, category: str, categories: Mapping[str, Sequence[str]]
) -> ColumnElement:
    """SQL: the action falls in ``category`` *with precedence* (not in an earlier category)."""
    names = list(categories)
    if category not in categories:
        raise KeyError(f"unknown action category {category!r}")
    condition = pattern_condition(column, categories[category])
    earlier = [pattern_condition(column, categories[n]) for n in names[: names.index(category)]]
    if earlier:
        condition = and_(condition, not_(or_(*earlier)))
    return condition


def category_case(column: ColumnElement, categories: Mapping[str, Sequence[str]]) -> ColumnElement:
    """SQL: ``CASE WHEN lower(action) LIKE ... THEN 'phi_read' ... ELSE 'other' END``."""
    whens = [
        (pattern_condition(column, patterns), literal(name))
        for name, patterns in categories.items()
        if patterns
    ]
    if not whens:
        return literal(UNCATEGORISED)
    return case(*whens, else_=literal(UNCATEGORISED))


def action_map(actions: Iterable[str | None], categories: Mapping[str, Sequence[str]]) -> dict[str, str]:
    """Each (non-null) action of ``actions`` with its category, by ``categorize``."""
    return {a: categorize(a, categories) for a in actions if a is not None}


def mapped_condition(column: ColumnElement, category: str, mapping: Mapping[str, str]) -> ColumnElement:
    """SQL: the action is one of ``mapping``'s actions of ``category`` (exact only for rows whose
    action is a key of ``mapping``; any other action is in no category)."""
    return column.in_(sorted(a for a, name in mapping.items() if name == category))


def mapped_case(column: ColumnElement, categories: Mapping[str, Sequence[str]],
                mapping: Mapping[str, str]) -> ColumnElement:
    """SQL: ``CASE WHEN action IN (...) THEN 'phi_read' ... ELSE 'other' END`` over ``mapping``."""
    whens = [
        (mapped_condition(column, name, mapping), literal(name))
        for name in categories
        if name in mapping.values()
    ]
    if not whens:
        return literal(UNCATEGORISED)
    return case(*whens, else_=literal(UNCATEGORISED))
