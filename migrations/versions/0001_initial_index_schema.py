"""initial index schema

Revision ID: 0001
Revises:
Create Date: 2026-11-22 00:05:15.675294
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patient",
        sa.Column("pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("patient_id", sa.String(), nullable=False),
        sa.Column("issuer_of_patient_id", sa.String(), nullable=False),
        sa.Column("patient_name", sa.String(), nullable=False),
        sa.Column("patient_birth_date", sa.String(), nullable=False),
        sa.Column("patient_sex", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_patient")),
    )
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.create_index("ix_patient_identity", ["patient_id", "issuer_of_patient_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_patient_patient_name"), ["patient_name"], unique=False)

    op.create_table(
        "study",
        sa.Column("pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("study_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("patient_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("study_date", sa.String(), nullable=False),
        sa.Column("study_time", sa.String(), nullable=False),
        sa.Column("accession_number", sa.String(), nullable=False),
        sa.Column("referring_physician_name", sa.String(), nullable=False),
        sa.Column("study_id", sa.String(), nullable=False),
        sa.Column("study_description", sa.String(), nullable=False),
        sa.Column("timezone_offset_from_utc", sa.String(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["patient_pk"], ["patient.pk"], name=op.f("fk_study_patient_pk_patient")),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_study")),
        sa.UniqueConstraint("study_instance_uid", name=op.f("uq_study_study_instance_uid")),
    )
    with op.batch_alter_table("study", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_study_accession_number"), ["accession_number"], unique=False)
        batch_op.create_index(batch_op.f("ix_study_patient_pk"), ["patient_pk"], unique=False)
        batch_op.create_index(batch_op.f("ix_study_study_date"), ["study_date"], unique=False)

    op.create_table(
        "series",
        sa.Column("pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("series_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("study_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("modality", sa.String(), nullable=False),
        sa.Column("series_number", sa.Integer(), nullable=True),
        sa.Column("series_description", sa.String(), nullable=False),
        sa.Column("performed_procedure_step_start_date", sa.String(), nullable=False),
        sa.Column("performed_procedure_step_start_time", sa.String(), nullable=False),
        sa.Column("timezone_offset_from_utc", sa.String(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["study_pk"], ["study.pk"], name=op.f("fk_series_study_pk_study")),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_series")),
        sa.UniqueConstraint("series_instance_uid", name=op.f("uq_series_series_instance_uid")),
    )
    with op.batch_alter_table("series", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_series_modality"), ["modality"], unique=False)
        batch_op.create_index(batch_op.f("ix_series_study_pk"), ["study_pk"], unique=False)

    op.create_table(
        "instance",
        sa.Column("pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sop_instance_uid", sa.String(length=64), nullable=False),
        sa.Column("series_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("sop_class_uid", sa.String(length=64), nullable=False),
        sa.Column("instance_number", sa.Integer(), nullable=True),
        sa.Column("timezone_offset_from_utc", sa.String(), nullable=False),
        sa.Column("transfer_syntax_uid", sa.String(length=64), nullable=False),
        sa.Column("rows", sa.Integer(), nullable=True),
        sa.Column("columns", sa.Integer(), nullable=True),
        sa.Column("bits_allocated", sa.SmallInteger(), nullable=True),
        sa.Column("bits_stored", sa.SmallInteger(), nullable=True),
        sa.Column("high_bit", sa.SmallInteger(), nullable=True),
        sa.Column("pixel_representation", sa.SmallInteger(), nullable=True),
        sa.Column("samples_per_pixel", sa.SmallInteger(), nullable=True),
        sa.Column("photometric_interpretation", sa.String(), nullable=True),
        sa.Column("planar_configuration", sa.SmallInteger(), nullable=True),
        sa.Column("number_of_frames", sa.Integer(), nullable=True),
        sa.Column("pixel_data_tag", sa.BigInteger(), nullable=True),
        sa.Column("lossy_image_compression", sa.String(length=2), nullable=False),
        sa.Column("blob_key", sa.String(length=255), nullable=False),
        sa.Column("data_blob_key", sa.String(length=255), nullable=True),
        sa.Column("blob_size", sa.BigInteger(), nullable=False),
        sa.Column("batch_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["series_pk"], ["series.pk"], name=op.f("fk_instance_series_pk_series")),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_instance")),
        sa.UniqueConstraint("sop_instance_uid", name=op.f("uq_instance_sop_instance_uid")),
    )
    with op.batch_alter_table("instance", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_instance_series_pk"), ["series_pk"], unique=False)
        batch_op.create_index(batch_op.f("ix_instance_sop_class_uid"), ["sop_class_uid"], unique=False)

    op.create_table(
        "request_attribute",
        sa.Column("pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("series_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("scheduled_procedure_step_id", sa.String(), nullable=False),
        sa.Column("requested_procedure_id", sa.String(), nullable=False),
        sa.ForeignKeyConstraint(
            ["series_pk"],
            ["series.pk"],
            name=op.f("fk_request_attribute_series_pk_series"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("pk", name=op.f("pk_request_attribute")),
    )
    with op.batch_alter_table("request_attribute", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_request_attribute_series_pk"), ["series_pk"], unique=False)

    op.create_table(
        "bulkdata",
        sa.Column("instance_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("path", sa.String(length=255), nullable=False),
        sa.Column("vr", sa.String(length=2), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("little_endian", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_pk"],
            ["instance.pk"],
            name=op.f("fk_bulkdata_instance_pk_instance"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("instance_pk", "path", name=op.f("pk_bulkdata")),
    )
    op.create_table(
        "frame",
        sa.Column("instance_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("frame_number", sa.Integer(), nullable=False),
        sa.Column("fragment_index", sa.Integer(), nullable=False),
        sa.Column("offset", sa.BigInteger(), nullable=False),
        sa.Column("length", sa.BigInteger(), nullable=False),
        sa.Column("bit_offset", sa.SmallInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_pk"], ["instance.pk"], name=op.f("fk_frame_instance_pk_instance"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("instance_pk", "frame_number", "fragment_index", name=op.f("pk_frame")),
    )
    op.create_table(
        "instance_metadata",
        sa.Column("instance_pk", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("dicom_json", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(
            ["instance_pk"],
            ["instance.pk"],
            name=op.f("fk_instance_metadata_instance_pk_instance"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("instance_pk", name=op.f("pk_instance_metadata")),
    )


def downgrade() -> None:
    op.drop_table("instance_metadata")
    op.drop_table("frame")
    op.drop_table("bulkdata")
    with op.batch_alter_table("request_attribute", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_request_attribute_series_pk"))

    op.drop_table("request_attribute")
    with op.batch_alter_table("instance", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_instance_sop_class_uid"))
        batch_op.drop_index(batch_op.f("ix_instance_series_pk"))

    op.drop_table("instance")
    with op.batch_alter_table("series", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_series_study_pk"))
        batch_op.drop_index(batch_op.f("ix_series_modality"))

    op.drop_table("series")
    with op.batch_alter_table("study", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_study_study_date"))
        batch_op.drop_index(batch_op.f("ix_study_patient_pk"))
        batch_op.drop_index(batch_op.f("ix_study_accession_number"))

    op.drop_table("study")
    with op.batch_alter_table("patient", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_patient_patient_name"))
        batch_op.drop_index("ix_patient_identity")

    op.drop_table("patient")
