"""Fixity: when each instance's stored file was last verified, and what verification found wrong with it

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN (see 0005): existing rows are unverified and unflagged (NULL).
    op.add_column("instance", sa.Column("fixity_problem", sa.String(length=16), nullable=True))
    op.add_column("instance", sa.Column("verified_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index(op.f("ix_instance_verified_at"), "instance", ["verified_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_instance_verified_at"), "instance")
    op.drop_column("instance", "verified_at")
    op.drop_column("instance", "fixity_problem")
