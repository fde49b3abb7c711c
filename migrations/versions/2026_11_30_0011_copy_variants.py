"""copy variants: message variants, the variant on each link, per-variant counters

Revision ID: 0011
Revises: 0008
Create Date: 2026-11-30 14:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
COUNTS = ("recipients", "share_clicks", "visits", "unique_visitors", "bot_clicks", "sharers")


def upgrade() -> None:
    # Plain ADD COLUMN with constant defaults: SQLite's batch mode would copy and drop tables.
    op.add_column(
        "messages", sa.Column("variants", JSON, nullable=False, server_default=sa.text("'[]'"))
    )
    op.add_column(
        "links", sa.Column("variant", sa.SmallInteger(), nullable=False, server_default="0")
    )
    op.create_table(
        "variant_counts",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("variant", sa.SmallInteger(), nullable=False),
        *(sa.Column(name, sa.Integer(), nullable=False, server_default="0") for name in COUNTS),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_variant_counts_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "campaign_id", "message_id", "variant", name=op.f("pk_variant_counts")
        ),
        sqlite_with_rowid=False,
    )
    # Every message sent before this revision had one text: variant 0 holds all its numbers.
    op.execute(
        f"INSERT INTO variant_counts (campaign_id, message_id, variant, {', '.join(COUNTS)}) "
        "SELECT r.campaign_id, r.message_id, 0, r.recipients, "
        "coalesce(c.share_clicks, 0), coalesce(c.visits, 0), coalesce(c.unique_visitors, 0), "
        "coalesce(c.bot_clicks, 0), coalesce(s.sharers, 0) "
        "FROM (SELECT campaign_id, message_id, count(DISTINCT delivery_id) AS recipients "
        "FROM links WHERE kind = 'visit' GROUP BY campaign_id, message_id) AS r "
        "LEFT JOIN (SELECT campaign_id, message_id, sum(share_clicks) AS share_clicks, "
        "sum(visits) AS visits, sum(unique_visitors) AS unique_visitors, "
        "sum(bot_clicks) AS bot_clicks FROM campaign_counts WHERE network <> '' "
        "GROUP BY campaign_id, message_id) AS c "
        "ON c.campaign_id = r.campaign_id AND c.message_id = r.message_id "
        "LEFT JOIN campaign_counts AS s ON s.campaign_id = r.campaign_id "
        "AND s.message_id = r.message_id AND s.network = ''"
    )


def downgrade() -> None:
    op.drop_table("variant_counts")
    # ALTER TABLE … DROP COLUMN works on PostgreSQL and SQLite ≥ 3.35 without copying tables.
    op.execute("ALTER TABLE links DROP COLUMN variant")
    op.execute("ALTER TABLE messages DROP COLUMN variants")
