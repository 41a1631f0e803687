"""retention_log: what the retention job removed, and when.

Revision ID: c0002
Revises: c0001
"""

import sqlalchemy as sa
from alembic import op

from compliance_reports.db.types import BigIntPK, UTCDateTime

revision = "c0002"
down_revision = "c0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "retention_log",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("removed_at", UTCDateTime, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(64)),
    )
    op.create_index("ix_retention_log_removed_at", "retention_log", ["removed_at"])


def downgrade() -> None:
    op.drop_table("retention_log")
