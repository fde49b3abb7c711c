"""conversion attribution: campaign flag, click ids, conversions, rollup columns

Revision ID: 0012
Revises: 0008
Create Date: 2026-11-30 14:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ROLLUPS = (
    "engagement",
    "campaign_hours",
    "amplifier_days",
    "campaign_counts",
    "campaign_amplifiers",
    "amplifier_totals",
    "variant_counts",
)


def upgrade() -> None:
    # Plain ADD COLUMN (with a default): SQLite's batch mode would copy these tables, and
    # dropping the old campaigns table cascades to its links and their clicks.
    op.add_column(
        "campaigns",
        sa.Column("attribution", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    for table in ROLLUPS:
        op.add_column(
            table, sa.Column("conversions", sa.Integer(), nullable=False, server_default="0")
        )
        op.add_column(
            table,
            sa.Column(
                "conversion_value",
                sa.Numeric(precision=18, scale=4),
                nullable=False,
                server_default="0",
            ),
        )

    op.create_table(
        "click_ids",
        sa.Column("key", sa.String(length=22), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["links.id"],
            name=op.f("fk_click_ids_link_id_links"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_click_ids")),
    )
    with op.batch_alter_table("click_ids", schema=None) as batch_op:
        batch_op.create_index("ix_click_ids_at", ["at"], unique=False)

    op.create_table(
        "conversions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("click_id", sa.String(length=32), nullable=False),
        sa.Column("event", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Numeric(precision=18, scale=4), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("external_id", sa.String(length=200), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("amplifier_id", sa.Integer(), nullable=True),
        sa.Column("network", sa.String(length=16), nullable=False),
        sa.Column("link_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_conversions_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_conversions_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversions")),
        sa.UniqueConstraint(
            "organization_id",
            "external_id",
            name=op.f("uq_conversions_organization_id_external_id"),
        ),
    )
    with op.batch_alter_table("conversions", schema=None) as batch_op:
        batch_op.create_index("ix_conversions_campaign", ["campaign_id"], unique=False)
        batch_op.create_index(
            "ix_conversions_organization_occurred",
            ["organization_id", "occurred_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("conversions", schema=None) as batch_op:
        batch_op.drop_index("ix_conversions_organization_occurred")
        batch_op.drop_index("ix_conversions_campaign")
    op.drop_table("conversions")
    with op.batch_alter_table("click_ids", schema=None) as batch_op:
        batch_op.drop_index("ix_click_ids_at")
    op.drop_table("click_ids")
    for table in reversed(ROLLUPS):
        op.drop_column(table, "conversion_value")
        op.drop_column(table, "conversions")
    op.drop_column("campaigns", "attribution")
