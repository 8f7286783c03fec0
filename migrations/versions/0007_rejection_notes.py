"""IHE IOCM rejection notes: the rejected SOP Instance UIDs, and a rejected flag on the instance row
(with a partial index over the rejected rows only)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 12:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rejected_instance",
        sa.Column("sop_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("study_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("series_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("reason_code", sa.String(length=16), nullable=False),
        sa.Column("note_sop_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("rejected_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("sop_instance_uid", name=op.f("pk_rejected_instance")),
    )
    op.create_index(
        op.f("ix_rejected_instance_study_instance_uid"), "rejected_instance", ["study_instance_uid"]
    )
    op.create_index(op.f("ix_rejected_instance_rejected_at"), "rejected_instance", ["rejected_at"])
    # Plain ADD COLUMN (as 0005): a batch "move and copy" on SQLite would drop the referenced instance table.
    op.add_column("instance", sa.Column("rejected", sa.Boolean(), nullable=False, server_default=sa.false()))
    # As app/store/read/visibility.py writes the condition (`rejected = 1` or `= true`), so planners use it.
    rejected = sa.column("rejected", sa.Boolean()) == sa.true()
    op.create_index(
        "ix_instance_rejected",
        "instance",
        ["series_pk"],
        sqlite_where=rejected,
        postgresql_where=rejected,
    )


def downgrade() -> None:
    op.drop_index("ix_instance_rejected", "instance")
    op.drop_column("instance", "rejected")
    op.drop_index(op.f("ix_rejected_instance_rejected_at"), "rejected_instance")
    op.drop_index(op.f("ix_rejected_instance_study_instance_uid"), "rejected_instance")
    op.drop_table("rejected_instance")
