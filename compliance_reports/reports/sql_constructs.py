"""SQL constructs the report builders share, compiled per backend (SQLite and PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import String
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement


class binary(FunctionElement):
    """A string expression sorted by bytes on every backend (``COLLATE "C"`` on PostgreSQL)."""

    type = String()
    inherit_cache = True
    name = "binary"


@compiles(binary)
def _binary_default(element, compiler, **kw):
    return compiler.process(element.clauses, **kw)


@compiles(binary, "postgresql")
def _binary_pg(element, compiler, **kw):
    return f'({compiler.process(element.clauses, **kw)}) COLLATE "C"'


class utc_hour_start(FunctionElement):
    """The UTC clock hour a timestamp column falls in, as a grouping key: ``substr(ts, 1, 13)``
    on SQLite; on PostgreSQL ``date_trunc`` of the UTC time, cheaper per row than formatting
    it (``utc_hour`` formats the key once per group)."""

    inherit_cache = True
    name = "utc_hour_start"


@compiles(utc_hour_start)
def _utc_hour_start_sqlite(element, compiler, **kw):
    return f"substr({compiler.process(element.clauses, **kw)}, 1, 13)"


@compiles(utc_hour_start, "postgresql")
def _utc_hour_start_pg(element, compiler, **kw):
    return f"date_trunc('hour', ({compiler.process(element.clauses, **kw)}) AT TIME ZONE 'UTC')"


class utc_hour(FunctionElement):
    """``YYYY-MM-DD HH`` of a ``utc_hour_start`` key (the clock hour, in UTC)."""

    type = String()
    inherit_cache = True
    name = "utc_hour"


@compiles(utc_hour)
def _utc_hour_sqlite(element, compiler, **kw):
    return compiler.process(element.clauses, **kw)


@compiles(utc_hour, "postgresql")
def _utc_hour_pg(element, compiler, **kw):
    return f"to_char({compiler.process(element.clauses, **kw)}, 'YYYY-MM-DD HH24')"
