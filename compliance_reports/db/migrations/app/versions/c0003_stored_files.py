"""stored_files: the index of files written, the only ones retention may delete.

Revision ID: c0003
Revises: c0002
"""

import sqlalchemy as sa
from alembic import op

from compliance_reports.db.types import BigIntPK, UTCDateTime

revision = "c0003"
down_revision = "c0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stored_files",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("location", sa.Text, nullable=False),
        sa.Column("sha256", sa.String(64)),
        sa.Column("size", sa.BigInteger),
        sa.Column("stored_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("kind", "owner", "location", name="uq_stored_files_location"),
    )
    op.create_index(
        "ix_stored_files_owner_stored_at", "stored_files", ["kind", "owner", "stored_at"]
    )


def downgrade() -> None:
    op.drop_table("stored_files")
