"""QIDO-RS: case-folded and fuzzy forms of person names, and an index for ModalitiesInStudy

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 06:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from app.dicomweb.person_names import fold_case, fuzzy_key

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

_FOLDED = sa.String().with_variant(sa.String(collation="C"), "postgresql")
_NAME_COLUMNS = (("patient", "patient_name"), ("study", "referring_physician_name"))


def upgrade() -> None:
    # Plain ALTER TABLE ADD COLUMN and CREATE INDEX: on SQLite a batch "move and copy" would drop the
    # patient table, which the study table references (foreign keys are enforced).
    for table, column in _NAME_COLUMNS:
        op.add_column(table, sa.Column(f"{column}_folded", _FOLDED, nullable=False, server_default=""))
        op.add_column(table, sa.Column(f"{column}_fuzzy", sa.String(), nullable=False, server_default=""))
        _fill_name_forms(table, column)
    op.create_index(op.f("ix_patient_patient_name_folded"), "patient", ["patient_name_folded"])
    op.create_index("ix_series_study_modality", "series", ["study_pk", "modality"])


def _fill_name_forms(table_name: str, column: str) -> None:
    """Compute the matching forms of the names already indexed (in Python: the folding is Unicode's)."""
    connection = op.get_bind()
    table = sa.table(
        table_name,
        sa.column("pk"),
        sa.column(column),
        sa.column(f"{column}_folded"),
        sa.column(f"{column}_fuzzy"),
    )
    rows = connection.execute(sa.select(table.c.pk, table.c[column]).where(table.c[column] != "")).all()
    if rows:
        connection.execute(
            sa.update(table)
            .where(table.c.pk == sa.bindparam("row_pk"))
            .values({f"{column}_folded": sa.bindparam("folded"), f"{column}_fuzzy": sa.bindparam("fuzzy")}),
            [{"row_pk": pk, "folded": fold_case(name), "fuzzy": fuzzy_key(name)} for pk, name in rows],
        )


def downgrade() -> None:
    op.drop_index("ix_series_study_modality", "series")
    op.drop_index(op.f("ix_patient_patient_name_folded"), "patient")
    for table, column in _NAME_COLUMNS:
        op.drop_column(table, f"{column}_fuzzy")
        op.drop_column(table, f"{column}_folded")
