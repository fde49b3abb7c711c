"""translations of campaigns and messages; the organization's impact settings

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 11:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    # Plain ADD COLUMN (a constant default is enough): SQLite's batch mode would copy and drop
    # the tables, and dropping `campaigns` cascades to every delivery, link and click.
    for table in ("campaigns", "messages"):
        op.add_column(
            table, sa.Column("translations", JSON, nullable=False, server_default=sa.text("'{}'"))
        )
    op.add_column(
        "organizations",
        sa.Column("show_impact", sa.Boolean(), nullable=False, server_default=sa.true()),
    )
    op.add_column(
        "organizations",
        sa.Column("public_leaderboard", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    # ALTER TABLE … DROP COLUMN works on PostgreSQL and SQLite ≥ 3.35 without copying tables.
    for table, column in (
        ("organizations", "public_leaderboard"),
        ("organizations", "show_impact"),
        ("messages", "translations"),
        ("campaigns", "translations"),
    ):
        op.execute(f"ALTER TABLE {table} DROP COLUMN {column}")
