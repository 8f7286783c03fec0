"""Extended query tags: the declared tags (query_tag) and their values in each instance (query_tag_value)

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 13:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

_PRIMARY_KEY = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
_FOLDED = sa.String().with_variant(sa.String(collation="C"), "postgresql")


def upgrade() -> None:
    op.create_table(
        "query_tag",
        sa.Column("pk", _PRIMARY_KEY, nullable=False),
        sa.Column("tag", sa.BigInteger(), nullable=False),
        sa.Column("keyword", sa.String(length=64), nullable=False),
        sa.Column("private_creator", sa.String(length=64), nullable=False),
        sa.Column("vr", sa.String(length=2), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("instances_done", sa.BigInteger(), nullable=False),
        sa.Column("instances_total", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_query_tag")),
        sa.UniqueConstraint("tag", name=op.f("uq_query_tag_tag")),
    )
    op.create_table(
        "query_tag_value",
        sa.Column("pk", _PRIMARY_KEY, nullable=False),
        sa.Column("query_tag_pk", _PRIMARY_KEY, nullable=False),
        sa.Column("instance_pk", _PRIMARY_KEY, nullable=False),
        sa.Column("series_pk", sa.BigInteger(), nullable=False),
        sa.Column("study_pk", sa.BigInteger(), nullable=False),
        sa.Column("text_value", _FOLDED, nullable=True),
        sa.Column("number_value", sa.Double(), nullable=True),
        sa.ForeignKeyConstraint(
            ["query_tag_pk"],
            ["query_tag.pk"],
            name=op.f("fk_query_tag_value_query_tag_pk_query_tag"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["instance_pk"],
            ["instance.pk"],
            name=op.f("fk_query_tag_value_instance_pk_instance"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_query_tag_value")),
    )
    op.create_index(op.f("ix_query_tag_value_instance_pk"), "query_tag_value", ["instance_pk"])
    op.create_index("ix_query_tag_value_text", "query_tag_value", ["query_tag_pk", "text_value"])
    op.create_index("ix_query_tag_value_number", "query_tag_value", ["query_tag_pk", "number_value"])


def downgrade() -> None:
    op.drop_table("query_tag_value")
    op.drop_table("query_tag")
