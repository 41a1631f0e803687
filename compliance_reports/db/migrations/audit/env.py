"""Alembic environment: the engine and version table come from db.migrate."""

from alembic import context

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        version_table=config.attributes["version_table"],
        transaction_per_migration=True,
    )
    context.run_migrations()
