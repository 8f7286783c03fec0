"""Deferred blob deletion: blobs unlinked from the index, kept until no reader can still hold them;
indexes on the instance's blob keys (garbage collection asks "is this blob referenced?")

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "blob_deletion",
        sa.Column("blob_key", sa.String(length=255), nullable=False),
        sa.Column("delete_after", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("blob_key", name=op.f("pk_blob_deletion")),
    )
    op.create_index(op.f("ix_blob_deletion_delete_after"), "blob_deletion", ["delete_after"])
    op.create_index(op.f("ix_instance_blob_key"), "instance", ["blob_key"])
    op.create_index(op.f("ix_instance_data_blob_key"), "instance", ["data_blob_key"])


def downgrade() -> None:
    op.drop_index(op.f("ix_instance_data_blob_key"), "instance")
    op.drop_index(op.f("ix_instance_blob_key"), "instance")
    op.drop_index(op.f("ix_blob_deletion_delete_after"), "blob_deletion")
    op.drop_table("blob_deletion")
