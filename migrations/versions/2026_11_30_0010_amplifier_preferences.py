"""amplifier preferences (frequency, pause, time zone), the organization's slots and weekly cap,
held deliveries with their due time, campaign expiry

Revision ID: 0010
Revises: 0008
Create Date: 2026-11-30 14:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    # Plain ADD COLUMN with constant defaults (see 0007: no batch copy of tables on SQLite).
    op.add_column(
        "amplifiers",
        sa.Column("frequency", sa.String(8), nullable=False, server_default="each"),
    )
    op.add_column("amplifiers", sa.Column("paused_until", UTC_DATETIME, nullable=True))
    op.add_column("amplifiers", sa.Column("timezone", sa.String(64), nullable=True))
    op.add_column("organizations", sa.Column("max_digests_per_week", sa.Integer(), nullable=True))
    op.add_column(
        "organizations",
        sa.Column("daily_at", sa.String(5), nullable=False, server_default="09:00"),
    )
    op.add_column(
        "organizations",
        sa.Column("weekly_on", sa.String(9), nullable=False, server_default="monday"),
    )
    op.add_column(
        "organizations",
        sa.Column("default_timezone", sa.String(64), nullable=False, server_default="UTC"),
    )
    op.add_column("campaigns", sa.Column("expires_at", UTC_DATETIME, nullable=True))
    op.add_column("deliveries", sa.Column("due_at", UTC_DATETIME, nullable=True))
    # Held deliveries of one amplifier are released together: found by amplifier.
    op.create_index("ix_deliveries_amplifier_status", "deliveries", ["amplifier_id", "status"])


def downgrade() -> None:
    op.drop_index("ix_deliveries_amplifier_status", table_name="deliveries")
    for table, column in (
        ("deliveries", "due_at"),
        ("campaigns", "expires_at"),
        ("organizations", "default_timezone"),
        ("organizations", "weekly_on"),
        ("organizations", "daily_at"),
        ("organizations", "max_digests_per_week"),
        ("amplifiers", "timezone"),
        ("amplifiers", "paused_until"),
        ("amplifiers", "frequency"),
    ):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
