"""Delivery ledger keyed on the document's content fingerprint; time-bounded retries.

New columns: content_fingerprint, sequence, purpose, supersedes_run_id, supersedes_sha256,
give_up_at, transmit_attempt, possible_duplicate. The unique key becomes (report_id, period,
content_fingerprint, destination, recipient, sequence). Existing rows keep their ids: their
fingerprint is their manifest sha256 (what identified them before), alert rows get purpose
"alert", and their give-up time is 24 hours after they were created.

Revision ID: c0004
Revises: c0003
"""

from datetime import timedelta

import sqlalchemy as sa
from alembic import op

from compliance_reports.db.types import UTCDateTime

revision = "c0004"
down_revision = "c0003"
branch_labels = None
depends_on = None

DEFAULT_GIVE_UP = timedelta(hours=24)


def upgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.add_column(sa.Column("content_fingerprint", sa.String(64)))
        batch.add_column(sa.Column("sequence", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("purpose", sa.String(16), nullable=False, server_default="delivery"))
        batch.add_column(sa.Column("supersedes_run_id", sa.String(64)))
        batch.add_column(sa.Column("supersedes_sha256", sa.String(64)))
        batch.add_column(sa.Column("give_up_at", UTCDateTime))
        batch.add_column(sa.Column("transmit_attempt", sa.Integer))
        batch.add_column(
            sa.Column("possible_duplicate", sa.Boolean, nullable=False, server_default=sa.false())
        )

    table = sa.table(
        "deliveries",
        sa.column("id", sa.String),
        sa.column("artifact_sha256", sa.String),
        sa.column("content_fingerprint", sa.String),
        sa.column("purpose", sa.String),
        sa.column("created_at", UTCDateTime),
        sa.column("give_up_at", UTCDateTime),
    )
    conn = op.get_bind()
    conn.execute(sa.update(table).values(content_fingerprint=table.c.artifact_sha256))
    conn.execute(
        sa.update(table).where(table.c.artifact_sha256.like("failure:%")).values(purpose="alert")
    )
    # Date arithmetic differs between dialects; the ledger is small enough to do it row by row.
    for row_id, created_at in conn.execute(sa.select(table.c.id, table.c.created_at)).all():
        conn.execute(
            sa.update(table).where(table.c.id == row_id).values(give_up_at=created_at + DEFAULT_GIVE_UP)
        )

    with op.batch_alter_table("deliveries") as batch:
        batch.alter_column("content_fingerprint", existing_type=sa.String(64), nullable=False)
        batch.drop_constraint("uq_deliveries_once", type_="unique")
        batch.create_unique_constraint(
            "uq_deliveries_identity",
            ["report_id", "period", "content_fingerprint", "destination", "recipient", "sequence"],
        )
        batch.create_index("ix_deliveries_report_period", ["report_id", "period"])


def downgrade() -> None:
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_index("ix_deliveries_report_period")
        batch.drop_constraint("uq_deliveries_identity", type_="unique")
        batch.create_unique_constraint(
            "uq_deliveries_once",
            ["report_id", "period", "artifact_sha256", "destination", "recipient"],
        )
        for column in (
            "possible_duplicate", "transmit_attempt", "give_up_at", "supersedes_sha256",
            "supersedes_run_id", "purpose", "sequence", "content_fingerprint",
        ):
            batch.drop_column(column)
