"""Audit trail: the audit_events table (and the studies each event touched); SHA-256 of stored blobs

Revision ID: 0005
Revises: 0002
Create Date: 2026-12-03 20:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMN: on SQLite a batch "move and copy" would drop the instance table, which the
    # frame, bulk data and metadata tables reference. Older rows keep NULL (no digest was taken).
    op.add_column("instance", sa.Column("sha256", sa.String(length=64), nullable=True))
    op.create_table(
        "audit_events",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("principal_kind", sa.String(length=16), nullable=False),
        sa.Column("principal", sa.String(length=255), nullable=False),
        sa.Column("username", sa.String(length=255), nullable=True),
        sa.Column("client", sa.String(length=64), nullable=True),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("route", sa.String(length=255), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("bytes_in", sa.BigInteger(), nullable=False),
        sa.Column("bytes_out", sa.BigInteger(), nullable=False),
        sa.Column("study_uids", sa.Text(), nullable=False),
        sa.Column("series_uids", sa.Text(), nullable=False),
        sa.Column("instance_uids", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_events")),
    )
    op.create_index(op.f("ix_audit_events_time"), "audit_events", ["time"])
    op.create_index(op.f("ix_audit_events_principal"), "audit_events", ["principal"])
    op.create_index(op.f("ix_audit_events_username"), "audit_events", ["username"])
    op.create_table(
        "audit_event_studies",
        sa.Column("event_id", sa.String(length=32), nullable=False),
        sa.Column("study_instance_uid", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["audit_events.id"],
            name=op.f("fk_audit_event_studies_event_id_audit_events"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("event_id", "study_instance_uid", name=op.f("pk_audit_event_studies")),
    )
    op.create_index(
        op.f("ix_audit_event_studies_study_instance_uid"), "audit_event_studies", ["study_instance_uid"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_event_studies_study_instance_uid"), "audit_event_studies")
    op.drop_table("audit_event_studies")
    for column in ("username", "principal", "time"):
        op.drop_index(op.f(f"ix_audit_events_{column}"), "audit_events")
    op.drop_table("audit_events")
    op.drop_column("instance", "sha256")
