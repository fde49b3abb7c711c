"""bounces and complaints

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 11:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "bounce_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_key", sa.String(length=160), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("campaign_id", sa.Integer(), nullable=True),
        sa.Column("amplifier_id", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=True),
        sa.Column("detail", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["amplifier_id"],
            ["amplifiers.id"],
            name=op.f("fk_bounce_events_amplifier_id_amplifiers"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_bounce_events_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_bounce_events_delivery_id_deliveries"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bounce_events")),
        sa.UniqueConstraint("event_key", name=op.f("uq_bounce_events_event_key")),
    )
    op.create_index(
        "ix_bounce_events_amplifier_kind",
        "bounce_events",
        ["amplifier_id", "kind", "created_at"],
    )
    op.create_index("ix_bounce_events_campaign_kind", "bounce_events", ["campaign_id", "kind"])
    op.create_index("ix_deliveries_message_id", "deliveries", ["message_id"])
    with op.batch_alter_table("amplifiers") as batch:
        batch.add_column(sa.Column("status_reason", sa.String(length=16), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("amplifiers") as batch:
        batch.drop_column("status_reason")
    op.drop_index("ix_deliveries_message_id", table_name="deliveries")
    op.drop_index("ix_bounce_events_campaign_kind", table_name="bounce_events")
    op.drop_index("ix_bounce_events_amplifier_kind", table_name="bounce_events")
    op.drop_table("bounce_events")
