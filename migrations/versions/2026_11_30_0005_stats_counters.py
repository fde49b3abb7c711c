"""stats counters: campaign × message × network counts, sharers, reach, points

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 11:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SHARE_POINTS = 10


def _campaign_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["campaign_id"],
        ["campaigns.id"],
        name=op.f(f"fk_{table}_campaign_id_campaigns"),
        ondelete="CASCADE",
    )


def _counts() -> list[sa.Column[int]]:
    return [
        sa.Column(name, sa.Integer(), nullable=False)
        for name in ("share_clicks", "visits", "unique_visitors", "bot_clicks")
    ]


def upgrade() -> None:
    op.create_table(
        "campaign_counts",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("network", sa.String(length=16), nullable=False),
        *_counts(),
        sa.Column("sharers", sa.Integer(), nullable=False),
        sa.Column("potential_reach", sa.BigInteger(), nullable=False),
        _campaign_fk("campaign_counts"),
        sa.PrimaryKeyConstraint(
            "campaign_id", "message_id", "network", name=op.f("pk_campaign_counts")
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "campaign_amplifiers",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("amplifier_id", sa.Integer(), nullable=False),
        *_counts(),
        sa.Column("shared_pairs", sa.Integer(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        _campaign_fk("campaign_amplifiers"),
        sa.PrimaryKeyConstraint("campaign_id", "amplifier_id", name=op.f("pk_campaign_amplifiers")),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_campaign_amplifiers_amplifier", "campaign_amplifiers", ["amplifier_id"])
    op.create_index(
        "ix_campaign_amplifiers_points",
        "campaign_amplifiers",
        ["campaign_id", sa.text("points DESC"), "amplifier_id"],
    )
    op.create_table(
        "amplifier_totals",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("amplifier_id", sa.Integer(), nullable=False),
        sa.Column("share_clicks", sa.Integer(), nullable=False),
        sa.Column("visits", sa.Integer(), nullable=False),
        sa.Column("unique_visitors", sa.Integer(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_amplifier_totals_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "organization_id", "amplifier_id", name=op.f("pk_amplifier_totals")
        ),
        sqlite_with_rowid=False,
    )
    op.create_index(
        "ix_amplifier_totals_points",
        "amplifier_totals",
        ["organization_id", sa.text("points DESC"), "amplifier_id"],
    )
    op.create_table(
        "message_sharers",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("amplifier_id", sa.Integer(), nullable=False),
        sa.Column("shared", sa.Integer(), nullable=False),
        _campaign_fk("message_sharers"),
        sa.PrimaryKeyConstraint(
            "campaign_id", "message_id", "amplifier_id", name=op.f("pk_message_sharers")
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "network_sharers",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("network", sa.String(length=16), nullable=False),
        sa.Column("amplifier_id", sa.Integer(), nullable=False),
        sa.Column("shared", sa.Integer(), nullable=False),
        sa.Column("audience", sa.BigInteger(), nullable=False),
        _campaign_fk("network_sharers"),
        sa.PrimaryKeyConstraint(
            "campaign_id", "network", "amplifier_id", name=op.f("pk_network_sharers")
        ),
        sqlite_with_rowid=False,
    )
    op.create_index("ix_network_sharers_amplifier", "network_sharers", ["amplifier_id"])
    with op.batch_alter_table("amplifier_days", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("first_shares", sa.Integer(), nullable=False, server_default="0")
        )
        batch_op.add_column(sa.Column("points", sa.Integer(), nullable=False, server_default="0"))
    op.create_index(
        "ix_amplifier_days_points",
        "amplifier_days",
        ["organization_id", "day", sa.text("points DESC"), "amplifier_id"],
    )
    op.create_index("ix_deliveries_campaign_updated", "deliveries", ["campaign_id", "updated_at"])
    for statement in _backfill(op.get_bind().dialect.name == "postgresql"):
        op.execute(statement)


def _backfill(postgresql: bool) -> list[str]:
    """The counters of clicks stored before this revision, from the engagement rollup (each
    counter is a sum over its rows; new clicks keep them up to date as they land)."""
    shared = "CASE WHEN e.share_clicks > 0 THEN 1 ELSE 0 END"
    sums = "sum(e.share_clicks), sum(e.visits), sum(e.unique_visitors)"
    if postgresql:
        day = "(e.first_shared_at AT TIME ZONE 'UTC')::date"
        value = "a.audience -> n.network"
        audience = (
            f"CASE WHEN jsonb_typeof({value}) = 'number' "
            "THEN (a.audience ->> n.network)::numeric::bigint ELSE 0 END"
        )
    else:
        day = "date(e.first_shared_at)"
        value = "json_extract(a.audience, '$.' || n.network)"
        audience = (
            f"CASE WHEN typeof({value}) IN ('integer', 'real') "
            f"THEN CAST({value} AS INTEGER) ELSE 0 END"
        )
    counts = "share_clicks, visits, unique_visitors, bot_clicks, sharers, potential_reach"
    return [
        "UPDATE amplifier_days SET points = unique_visitors",
        "INSERT INTO amplifier_days (organization_id, day, amplifier_id, share_clicks, visits, "
        "unique_visitors, first_shares, points) "
        f"SELECT e.organization_id, {day}, e.amplifier_id, 0, 0, 0, count(*), "
        f"count(*) * {SHARE_POINTS} FROM engagement AS e WHERE e.first_shared_at IS NOT NULL "
        f"GROUP BY e.organization_id, {day}, e.amplifier_id "
        "ON CONFLICT (organization_id, day, amplifier_id) DO UPDATE SET "
        "first_shares = amplifier_days.first_shares + excluded.first_shares, "
        "points = amplifier_days.points + excluded.points",
        "INSERT INTO message_sharers (campaign_id, message_id, amplifier_id, shared) "
        "SELECT e.campaign_id, e.message_id, e.amplifier_id, count(*) FROM engagement AS e "
        "WHERE e.share_clicks > 0 GROUP BY e.campaign_id, e.message_id, e.amplifier_id",
        "INSERT INTO network_sharers (campaign_id, network, amplifier_id, shared, audience) "
        f"SELECT n.campaign_id, n.network, n.amplifier_id, n.shared, coalesce((SELECT {audience} "
        "FROM amplifiers AS a WHERE a.id = n.amplifier_id), 0) FROM (SELECT e.campaign_id, "
        "e.network, e.amplifier_id, count(*) AS shared FROM engagement AS e "
        "WHERE e.share_clicks > 0 GROUP BY e.campaign_id, e.network, e.amplifier_id) AS n",
        f"INSERT INTO campaign_counts (campaign_id, message_id, network, {counts}) "
        f"SELECT e.campaign_id, e.message_id, e.network, {sums}, sum(e.bot_clicks), "
        f"sum({shared}), 0 FROM engagement AS e GROUP BY e.campaign_id, e.message_id, e.network",
        f"INSERT INTO campaign_counts (campaign_id, message_id, network, {counts}) "
        "SELECT campaign_id, message_id, '', 0, 0, 0, 0, count(*), 0 FROM message_sharers "
        "GROUP BY campaign_id, message_id",
        f"INSERT INTO campaign_counts (campaign_id, message_id, network, {counts}) "
        "SELECT campaign_id, 0, network, 0, 0, 0, 0, count(*), sum(audience) "
        "FROM network_sharers GROUP BY campaign_id, network",
        f"INSERT INTO campaign_counts (campaign_id, message_id, network, {counts}) "
        "SELECT e.campaign_id, 0, '', 0, 0, 0, 0, count(DISTINCT e.amplifier_id), 0 "
        "FROM engagement AS e WHERE e.share_clicks > 0 GROUP BY e.campaign_id",
        "INSERT INTO campaign_amplifiers (campaign_id, amplifier_id, share_clicks, visits, "
        "unique_visitors, bot_clicks, shared_pairs, points) "
        f"SELECT e.campaign_id, e.amplifier_id, {sums}, sum(e.bot_clicks), sum({shared}), "
        f"sum({shared}) * {SHARE_POINTS} + sum(e.unique_visitors) FROM engagement AS e "
        "GROUP BY e.campaign_id, e.amplifier_id",
        "INSERT INTO amplifier_totals (organization_id, amplifier_id, share_clicks, visits, "
        "unique_visitors, points) "
        f"SELECT e.organization_id, e.amplifier_id, {sums}, "
        f"sum({shared}) * {SHARE_POINTS} + sum(e.unique_visitors) FROM engagement AS e "
        "GROUP BY e.organization_id, e.amplifier_id",
    ]


def downgrade() -> None:
    op.drop_index("ix_deliveries_campaign_updated", table_name="deliveries")
    op.drop_index("ix_amplifier_days_points", table_name="amplifier_days")
    with op.batch_alter_table("amplifier_days", schema=None) as batch_op:
        batch_op.drop_column("points")
        batch_op.drop_column("first_shares")
    op.drop_index("ix_network_sharers_amplifier", table_name="network_sharers")
    op.drop_table("network_sharers")
    op.drop_table("message_sharers")
    op.drop_index("ix_amplifier_totals_points", table_name="amplifier_totals")
    op.drop_table("amplifier_totals")
    op.drop_index("ix_campaign_amplifiers_points", table_name="campaign_amplifiers")
    op.drop_index("ix_campaign_amplifiers_amplifier", table_name="campaign_amplifiers")
    op.drop_table("campaign_amplifiers")
    op.drop_table("campaign_counts")
