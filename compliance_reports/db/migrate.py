"""Alembic migrations for both databases, run programmatically (no alembic.ini needed).

Each logical database has its own migration history and version table, so they can live in
one database or two: `app` (COMPLIANCE_DB_URL) and `audit` (AUDIT_DB_URL).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
VERSION_TABLES = {"app": "compliance_alembic_version", "audit": "audit_alembic_version"}


@dataclass(frozen=True)
class MigrationState:
    target: str
    current: str | None
    head: str

    @property
    def up_to_date(self) -> bool:
        return self.current == self.head


def _config(target: str, engine: Engine) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR / target))
    cfg.attributes["engine"] = engine
    cfg.attributes["version_table"] = VERSION_TABLES[target]
    return cfg


def state(target: str, engine: Engine) -> MigrationState:
    cfg = _config(target, engine)
    head = ScriptDirectory.from_config(cfg).get_current_head()
    with engine.connect() as conn:
        current = MigrationContext.configure(
            conn, opts={"version_table": VERSION_TABLES[target]}
        ).get_current_revision()
    return MigrationState(target=target, current=current, head=head)


def upgrade(target: str, engine: Engine, revision: str = "head") -> MigrationState:
    """Bring one database to `revision`; running it again changes nothing."""
    command.upgrade(_config(target, engine), revision)
    return state(target, engine)


def upgrade_all(app_engine: Engine, audit_engine: Engine) -> list[MigrationState]:
    return [upgrade("audit", audit_engine), upgrade("app", app_engine)]
