"""The report window read once: a temporary table the aggregate statements read instead of
``audit_log``.

A report sends twenty-odd aggregate statements over the same rows (the organization's events
in the window that match the criteria). Each of them used to find those rows in ``audit_log``
again, among wide rows (``details``, hashes), and to evaluate the action categories and the
JSON fields per row. ``WindowRows.create`` copies the rows once, on the report's connection,
into the temporary table ``report_window``: only the columns the aggregates read, plus values
computed once per row:

- ``category``: the action category, through the window's action map (``action IN (...)``
  per category, see ``action_categories.action_map``);
- ``patient_id``: ``details.patient_id`` as text (the HIPAA patient of an event);
- flags a builder asks for before its first statement (``ReportContext.flag``), 1/0: HIPAA's
  after-hours condition, dozens of OR-ed time ranges, is evaluated once per row, not per use.

Statements are still written against ``audit_log`` (so each one reads the same on both
sources); ``WindowRows.adapt`` rewrites a statement built with the window scope to read the
table: ``audit_log`` and its columns become the table's, the category CASE becomes
``category``, ``details.patient_id`` becomes ``patient_id`` and a flag's condition (the same
expression, compared structurally) ``flag = 1``. A statement that needs a column
the table does not hold (``details`` otherwise, hashes) raises ``NotInWindowRows`` and runs on
``audit_log`` as before; so does every statement reaching outside the window.

Temporary tables belong to the connection: PostgreSQL drops the table when the report's
transaction rolls back, and ``create`` drops one a failed build left on a pooled SQLite
connection. ``drop`` removes it at the end of a build.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import Column, Connection, Integer, MetaData, String, Table, case, literal, select, text
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ClauseElement, ColumnElement
from sqlalchemy.sql.expression import Alias, Executable
from sqlalchemy.sql.visitors import replacement_traverse

from compliance_reports.db.schema import audit_log

TABLE_NAME = "report_window"
COPIED_COLUMNS: tuple[str, ...] = (
    "id", "timestamp", "principal_id", "action", "status", "data_classification",
    "target_resource_type", "target_resource_id",
)
PATIENT = audit_log.c.details["patient_id"].as_string()
WORK_MEM = "64MB"
STATISTICS_TARGET = 3


class NotInWindowRows(LookupError):
    """The statement reads a column the window table does not hold."""


class _CreateTempAs(Executable, ClauseElement):
    inherit_cache = False

    def __init__(self, name: str, query) -> None:
        self.name = name
        self.query = query


@compiles(_CreateTempAs)
def _create_temp_as(element, compiler, **kw):
    return f"CREATE TEMPORARY TABLE {element.name} AS {compiler.process(element.query, **kw)}"


def _same(element, expr) -> bool:
    return element is expr or (type(element) is type(expr) and element.compare(expr))


def _drop(conn: Connection) -> None:
    # Schema-qualified: an ordinary table of the same name is never touched.
    schema = "pg_temp" if conn.dialect.name == "postgresql" else "temp"
    conn.execute(text(f"DROP TABLE IF EXISTS {schema}.{TABLE_NAME}"))


class WindowRows:
    """The temporary table of one build and the rewriting of statements onto it."""

    def __init__(self, table: Table, derived: Mapping[str, ColumnElement],
                 flags: Mapping[str, ColumnElement]) -> None:
        self.table = table
        self._derived = derived  # column name -> the audit_log expression it holds
        self._flags = flags      # column name -> the audit_log condition it holds as 1/0

    @classmethod
    def create(cls, conn: Connection, scope: list[ColumnElement], category: ColumnElement,
               flags: Mapping[str, ColumnElement] | None = None) -> WindowRows:
        """Copy the rows matching ``scope`` (conditions on audit_log) with their ``category``
        (an expression on audit_log) and ``flags`` (name -> condition on audit_log, held as
        1/0) into a new temporary table."""
        c = audit_log.c
        derived = {"category": category, "patient_id": PATIENT}
        flags = dict(flags or {})
        postgresql = conn.dialect.name == "postgresql"

        def text_column(expr, name):
            # Byte order for the table's strings on PostgreSQL: the many count(DISTINCT ...) and
            # GROUP BY sorts compare with memcmp instead of the database collation's strcoll
            # (equality, so every count, is the same for deterministic collations; ordered
            # output already sorts by bytes, see sql_constructs.binary).
            return (expr.collate("C") if postgresql else expr).label(name)

        query = select(
            *(c[name] if name in ("id", "timestamp") else text_column(c[name], name)
              for name in COPIED_COLUMNS),
            *(text_column(expr, name) for name, expr in derived.items()),
            *(case((cond, literal(1)), else_=literal(0)).label(name) for name, cond in flags.items()),
        ).where(*scope)
        _drop(conn)
        if postgresql:
            # The aggregates sort and hash the whole window: in memory rather than in temporary
            # files (the default 4MB spills at 200,000 events). For this transaction only.
            conn.execute(text(f"SET LOCAL work_mem = '{WORK_MEM}'"))
        conn.execute(_CreateTempAs(TABLE_NAME, query))
        if postgresql:
            # Statistics from a small sample (a few milliseconds): without any, the planner
            # expects a few rows and sorts for every GROUP BY and DISTINCT instead of hashing.
            conn.execute(text(f"SET LOCAL default_statistics_target = {STATISTICS_TARGET}"))
            conn.execute(text(f"ANALYZE {TABLE_NAME}"))
        table = Table(
            TABLE_NAME, MetaData(),
            *(Column(name, c[name].type) for name in COPIED_COLUMNS),
            Column("category", String()), Column("patient_id", String()),
            *(Column(name, Integer()) for name in flags),
        )
        return cls(table, derived, flags)

    def drop(self, conn: Connection) -> None:
        _drop(conn)

    def adapt(self, statement):
        """``statement`` (over audit_log, without the window scope) reading the table instead."""
        table = self.table

        def replace(element):
            if element is audit_log:
                return table
            if isinstance(element, Alias) and element.element is audit_log:
                raise NotInWindowRows(element.name)  # a second reading of the log, any rows
            if isinstance(element, Column) and element.table is audit_log:
                if element.name not in table.c:
                    raise NotInWindowRows(element.name)
                return table.c[element.name]
            for name, expr in self._derived.items():
                if _same(element, expr):
                    return table.c[name]
            for name, cond in self._flags.items():
                if _same(element, cond):
                    return table.c[name] == 1
            return None

        return replacement_traverse(statement, {}, replace)
