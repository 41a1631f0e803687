"""Action categories: the SQL LIKE translation agrees with fnmatch, precedence, overrides."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import Column, Integer, MetaData, String, Table, create_engine, insert, literal, select

from compliance_reports.audit.action_categories import (
    CATEGORY_ORDER,
    DEFAULT_CATEGORIES,
    UNCATEGORISED,
    action_map,
    categorize,
    category_case,
    category_condition,
    fnmatch_to_like,
    mapped_case,
    mapped_condition,
    matches,
    pattern_condition,
    resolve_categories,
)
from compliance_reports.db.engine import make_engine

ACTIONS = [
    "auth.login", "auth.logout", "auth.mfa.challenge", "AUTH.LOGIN", "author.update", "auth",
    "auth.login.sso", "auth.loginx", "auth.mfa", "auth.account.locked", "auth.account.unlock",
    "auth.lockout", "auth.token.refresh",
    "fhir.patient.read", "fhir.observation.read", "fhir.patient.update", "fhir.patient.create",
    "fhir.patient.delete", "fhir.read", "fhir..read", "fhir.patient.read.all", "fhir.patient.reader",
    "fhir.patient.history.read",
    "phi.disclosure", "phi.disclosures", "record.share", "record_share", "data.export",
    "data.exports", "dataXexport", "data.transfer.cross_border", "data.transfer", "admin.role.assign",
    "admin", "administrator.login", "audit.config.update", "audit.retention.change", "audit.read",
    "emergency.access.grant", "consent.given", "consent.withdrawn", "dsr.erasure.request",
    "dsr.access.complete", "security.breach.record", "security.scan", "system.healthcheck",
    "50%_off", "a_b", "a%b", "a\\b", "", "x" * 200, "fhir.%.read", "fhir._.read", "Zoë.read",
]


def _table_engine(engine):
    meta = MetaData()
    table = Table("actions_probe", meta, Column("id", Integer, primary_key=True),
                  Column("action", String(255)))
    meta.create_all(engine)
    with engine.begin() as conn:
        conn.execute(insert(table), [{"id": i, "action": a} for i, a in enumerate(ACTIONS)])
    return table


def _sql_categories(engine, table, categories):
    with engine.connect() as conn:
        rows = conn.execute(
            select(table.c.id, category_case(table.c.action, categories)).order_by(table.c.id)
        ).all()
    return {ACTIONS[i]: cat for i, cat in rows}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_action_map_gives_the_rows_the_patterns_give(backend, request):
    """The window form (the distinct actions resolved once, then ``action IN (...)``) selects
    and labels every row as the LIKE form does, for the actions it was built from."""
    engine = request.getfixturevalue("engine" if backend == "sqlite" else "pg_engine")
    table = _table_engine(engine)
    tricky = resolve_categories({"percent": ["50%_*"], "single": ["a?b"], "login": ["AUTH.LOGIN*"]})
    with engine.connect() as conn:
        for categories in (resolve_categories(), tricky):
            mapping = action_map(conn.execute(select(table.c.action).distinct()).scalars(), categories)
            assert mapping["fhir.patient.read"] == "phi_read"
            mapped = dict(conn.execute(select(table.c.id, mapped_case(table.c.action, categories, mapping))).all())
            patterned = dict(conn.execute(select(table.c.id, category_case(table.c.action, categories))).all())
            assert mapped == patterned
            for name in categories:
                by_map = set(conn.execute(select(table.c.id).where(
                    mapped_condition(table.c.action, name, mapping))).scalars())
                by_like = set(conn.execute(select(table.c.id).where(
                    category_condition(table.c.action, name, categories))).scalars())
                assert by_map == by_like, name


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_sql_case_agrees_with_python_on_many_actions(backend, request):
    engine = request.getfixturevalue("engine" if backend == "sqlite" else "pg_engine")
    table = _table_engine(engine)
    tricky = resolve_categories({
        "percent": ["50%_*"], "underscore": ["a_b"], "backslash": ["a\\b"], "single": ["a?b"],
    })
    for categories in (resolve_categories(), tricky):
        sql = _sql_categories(engine, table, categories)
        assert sql == {a: categorize(a, categories) for a in ACTIONS}
    defaults = _sql_categories(engine, table, resolve_categories())
    assert defaults["fhir.patient.read"] == "phi_read"
    assert defaults["AUTH.LOGIN"] == "login"                   # case-insensitive (ASCII)
    assert defaults["fhir.patient.history.read"] == "phi_read"   # '*' spans dots, like fnmatch
    assert defaults["fhir.patient.read.all"] == UNCATEGORISED
    assert defaults["record_share"] == UNCATEGORISED             # '_' is literal in patterns
    assert defaults["a_b"] == UNCATEGORISED
    assert tricky and _sql_categories(engine, table, tricky)["a%b"] == "single"
    # category_condition (precedence included) selects the same rows as the CASE
    with engine.connect() as conn:
        for name in CATEGORY_ORDER:
            cond = category_condition(table.c.action, name, resolve_categories())
            got = {ACTIONS[i] for i in conn.execute(select(table.c.id).where(cond)).scalars()}
            assert got == {a for a, c in defaults.items() if c == name}, name


def test_like_translation():
    assert fnmatch_to_like("fhir.*.read") == "fhir.%.read"
    assert fnmatch_to_like("a?b") == "a_b"
    assert fnmatch_to_like("50%_off") == "50\\%\\_off"
    assert fnmatch_to_like("a\\b") == "a\\\\b"
    assert fnmatch_to_like("Auth.*") == "auth.%"
    with pytest.raises(ValueError, match="character class"):
        fnmatch_to_like("fhir.[ab].read")


ALPHABET = "ab.%_\\*?X"
actions = st.text(alphabet="ab.%_\\X", max_size=8)
patterns = st.text(alphabet=ALPHABET, min_size=1, max_size=6)


@pytest.fixture(scope="module")
def memory_sqlite():
    return create_engine("sqlite://")


@settings(max_examples=300, deadline=None)
@given(action=actions, pattern=patterns)
def test_like_matches_fnmatch_property(memory_sqlite, action, pattern):
    with memory_sqlite.connect() as conn:
        got = conn.execute(select(pattern_condition(literal(action), [pattern]))).scalar()
    assert bool(got) == matches(action, pattern)


def test_precedence_first_category_in_fixed_order():
    overlapping = resolve_categories({"authentication": ["*.read"], "phi_read": ["fhir.*.read"]})
    assert categorize("fhir.patient.read", overlapping) == "authentication"
    assert categorize("fhir.patient.read") == "phi_read"
    assert categorize("nothing.matches") == UNCATEGORISED
    assert categorize(None) == UNCATEGORISED


def test_authentication_kinds_come_before_the_catch_all():
    # the actions the demo traffic writes, each in its own kind
    assert categorize("auth.login") == "login"
    assert categorize("auth.mfa.challenge") == "mfa"
    assert categorize("auth.logout") == "logout"
    # lockouts, and what is left of auth.* (never a login)
    assert categorize("auth.account.locked") == categorize("auth.lockout") == "lockout"
    assert categorize("auth.account.unlock") == "authentication"
    assert categorize("auth.loginx") == "authentication"
    assert categorize("auth.token.refresh") == "authentication"
    # a kind is overridden like any category: another source's sign-in action counts as a login
    cats = resolve_categories({"login": ["user.signin"]})
    assert categorize("user.signin", cats) == "login"
    assert categorize("auth.login", cats) == "authentication"


def test_overrides_replace_a_category_and_add_new_ones_last():
    cats = resolve_categories({"export": ["bulk.*"], "monitoring": ["system.*"], "alpha": ["a.*"]})
    assert cats["export"] == ("bulk.*",)
    assert cats["phi_read"] == DEFAULT_CATEGORIES["phi_read"]
    assert list(cats) == [*CATEGORY_ORDER, "alpha", "monitoring"]
    assert categorize("data.export", cats) == UNCATEGORISED
    assert categorize("bulk.download", cats) == "export"
    with pytest.raises(ValueError, match="reserved"):
        resolve_categories({UNCATEGORISED: ["x"]})
    with pytest.raises(ValueError, match="character class"):
        resolve_categories({"export": ["[de]ata.export"]})


def test_make_engine_sqlite_like_is_case_insensitive_too(tmp_path):
    # The lower() on both sides is what makes this hold on PostgreSQL as well (tested above).
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.connect() as conn:
        assert conn.execute(select(pattern_condition(literal("Data.Export"), ["data.export"]))).scalar()
