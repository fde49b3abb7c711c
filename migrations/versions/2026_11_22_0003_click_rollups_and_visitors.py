"""click rollups and visitors

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "visitor_salts",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("salt", sa.LargeBinary(length=32), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_visitor_salts")),
    )
    op.create_table(
        "click_rollups",
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("bot_clicks", sa.Integer(), nullable=False),
        sa.Column("unique_visitors", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["links.id"],
            name=op.f("fk_click_rollups_link_id_links"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("link_id", "hour", name=op.f("pk_click_rollups")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "link_visitors",
        sa.Column("link_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("visitor_key", sa.String(length=32), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["link_id"],
            ["links.id"],
            name=op.f("fk_link_visitors_link_id_links"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("link_id", "day", "visitor_key", name=op.f("pk_link_visitors")),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("clicks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("delivery_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("kind", sa.String(length=8), nullable=True))
        batch_op.create_index("ix_clicks_burst", ["delivery_id", "visitor_key", "at"], unique=False)
    _backfill()


def _backfill() -> None:
    """Clicks stored before this revision: their kind and delivery from their links, and the
    rollups and visitor sets they imply (new clicks keep these up to date as they land)."""
    for column in ("kind", "delivery_id"):
        op.execute(
            f"UPDATE clicks SET {column} = "
            f"(SELECT {column} FROM links WHERE links.id = clicks.link_id)"
        )
    if op.get_bind().dialect.name == "postgresql":
        hour = "date_trunc('hour', at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'"
        day = "(at AT TIME ZONE 'UTC')::date"
        human = "NOT is_bot"
    else:
        hour = "strftime('%Y-%m-%d %H:00:00.000000', at)"
        day = "date(at)"
        human = "is_bot = 0"
    op.execute(
        "INSERT INTO link_visitors (link_id, day, visitor_key, hour) "
        f"SELECT link_id, {day}, visitor_key, min({hour}) FROM clicks "
        f"WHERE {human} AND visitor_key IS NOT NULL GROUP BY link_id, {day}, visitor_key"
    )
    op.execute(
        "INSERT INTO click_rollups (link_id, hour, clicks, bot_clicks, unique_visitors) "
        f"SELECT link_id, {hour}, sum(CASE WHEN {human} THEN 1 ELSE 0 END), "
        f"sum(CASE WHEN {human} THEN 0 ELSE 1 END), 0 FROM clicks GROUP BY link_id, {hour}"
    )
    op.execute(
        "UPDATE click_rollups SET unique_visitors = (SELECT count(*) FROM link_visitors AS v "
        "WHERE v.link_id = click_rollups.link_id AND v.hour = click_rollups.hour)"
    )


def downgrade() -> None:
    with op.batch_alter_table("clicks", schema=None) as batch_op:
        batch_op.drop_index("ix_clicks_burst")
        batch_op.drop_column("kind")
        batch_op.drop_column("delivery_id")

    op.drop_table("link_visitors")
    op.drop_table("click_rollups")
    op.drop_table("visitor_salts")
