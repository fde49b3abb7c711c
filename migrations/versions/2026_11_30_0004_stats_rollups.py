"""stats rollups

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 00:00:13.722028
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "amplifier_days",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("amplifier_id", sa.Integer(), nullable=False),
        sa.Column("share_clicks", sa.Integer(), nullable=False),
        sa.Column("visits", sa.Integer(), nullable=False),
        sa.Column("unique_visitors", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_amplifier_days_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "organization_id", "day", "amplifier_id", name=op.f("pk_amplifier_days")
        ),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "cost_per_click",
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("network", sa.String(length=16), nullable=False),
        sa.Column("amount", sa.Numeric(precision=12, scale=4), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["organization_id"],
            ["organizations.id"],
            name=op.f("fk_cost_per_click_organization_id_organizations"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("organization_id", "network", name=op.f("pk_cost_per_click")),
    )
    op.create_table(
        "campaign_hours",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("hour", sa.DateTime(timezone=True), nullable=False),
        sa.Column("share_clicks", sa.Integer(), nullable=False),
        sa.Column("visits", sa.Integer(), nullable=False),
        sa.Column("unique_visitors", sa.Integer(), nullable=False),
        sa.Column("bot_clicks", sa.Integer(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_campaign_hours_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("campaign_id", "hour", name=op.f("pk_campaign_hours")),
        sqlite_with_rowid=False,
    )
    op.create_table(
        "engagement",
        sa.Column("campaign_id", sa.Integer(), nullable=False),
        sa.Column("amplifier_id", sa.Integer(), nullable=False),
        sa.Column("message_id", sa.Integer(), nullable=False),
        sa.Column("network", sa.String(length=16), nullable=False),
        sa.Column("organization_id", sa.Integer(), nullable=False),
        sa.Column("share_clicks", sa.Integer(), nullable=False),
        sa.Column("visits", sa.Integer(), nullable=False),
        sa.Column("unique_visitors", sa.Integer(), nullable=False),
        sa.Column("bot_clicks", sa.Integer(), nullable=False),
        sa.Column("first_shared_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["campaign_id"],
            ["campaigns.id"],
            name=op.f("fk_engagement_campaign_id_campaigns"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "campaign_id", "amplifier_id", "message_id", "network", name=op.f("pk_engagement")
        ),
        sqlite_with_rowid=False,
    )
    with op.batch_alter_table("engagement", schema=None) as batch_op:
        batch_op.create_index("ix_engagement_amplifier", ["amplifier_id"], unique=False)
        batch_op.create_index("ix_engagement_message", ["message_id"], unique=False)
        batch_op.create_index(
            "ix_engagement_org_first_shared", ["organization_id", "first_shared_at"], unique=False
        )

    with op.batch_alter_table("amplifiers", schema=None) as batch_op:
        batch_op.create_index(
            "ix_amplifiers_org_updated", ["organization_id", "updated_at"], unique=False
        )
    _backfill()


def _backfill() -> None:
    """The statistics rollups of clicks stored before this revision, from their per-link
    hourly rollups (new clicks keep them up to date as they land)."""
    columns = ("link_id", "hour", "clicks", "bot_clicks", "unique_visitors")
    if op.get_bind().dialect.name == "postgresql":
        day = "(d.hour AT TIME ZONE 'UTC')::date"
    else:
        day = "date(d.hour)"
    for statement in stats_statements(
        "click_rollups AS d", {c: f"d.{c}" for c in columns}, day=day, now="CURRENT_TIMESTAMP"
    ):
        op.execute(statement)


def stats_statements(source: str, d: dict[str, str], day: str, now: str) -> tuple[str, ...]:
    """The statistics rollups (app/models/stats.py) from one batch of per-link hourly deltas
    `d` (link_id, hour, clicks, bot_clicks, unique_visitors) read from `source`."""
    share = f"CASE WHEN l.kind = 'share' THEN {d['clicks']} ELSE 0 END"
    visit = f"CASE WHEN l.kind = 'visit' THEN {d['clicks']} ELSE 0 END"
    unique = f"CASE WHEN l.kind = 'visit' THEN {d['unique_visitors']} ELSE 0 END"
    first_share = f"CASE WHEN l.kind = 'share' AND {d['clicks']} > 0 THEN {d['hour']} END"
    joined = (
        f"FROM {source} JOIN links AS l ON l.id = {d['link_id']} "
        "JOIN campaigns AS c ON c.id = l.campaign_id WHERE true"
    )
    sums = f"sum({share}), sum({visit}), sum({unique})"

    def add(table: str, columns: tuple[str, ...]) -> str:
        return ", ".join(f"{c} = {table}.{c} + excluded.{c}" for c in columns)

    counts = ("share_clicks", "visits", "unique_visitors")
    engagement = (
        "INSERT INTO engagement (campaign_id, amplifier_id, message_id, network, "
        "organization_id, share_clicks, visits, unique_visitors, bot_clicks, first_shared_at, "
        "updated_at) "
        f"SELECT l.campaign_id, coalesce(l.amplifier_id, 0), l.message_id, l.network, "
        f"c.organization_id, {sums}, sum({d['bot_clicks']}), min({first_share}), {now} "
        f"{joined} GROUP BY l.campaign_id, coalesce(l.amplifier_id, 0), l.message_id, "
        "l.network, c.organization_id "
        "ON CONFLICT (campaign_id, amplifier_id, message_id, network) DO UPDATE SET "
        f"{add('engagement', (*counts, 'bot_clicks'))}, "
        "first_shared_at = CASE "
        "WHEN engagement.share_clicks + excluded.share_clicks <= 0 THEN NULL "
        "WHEN engagement.share_clicks <= 0 THEN excluded.first_shared_at "
        "ELSE engagement.first_shared_at END, "
        "updated_at = excluded.updated_at"
    )
    campaign_hours = (
        "INSERT INTO campaign_hours (campaign_id, hour, share_clicks, visits, unique_visitors, "
        "bot_clicks, updated_at) "
        f"SELECT l.campaign_id, {d['hour']}, {sums}, sum({d['bot_clicks']}), {now} "
        f"{joined} GROUP BY l.campaign_id, {d['hour']} "
        "ON CONFLICT (campaign_id, hour) DO UPDATE SET "
        f"{add('campaign_hours', (*counts, 'bot_clicks'))}, updated_at = excluded.updated_at"
    )
    amplifier_days = (
        "INSERT INTO amplifier_days (organization_id, day, amplifier_id, share_clicks, visits, "
        "unique_visitors) "
        f"SELECT c.organization_id, {day}, coalesce(l.amplifier_id, 0), {sums} "
        f"{joined} GROUP BY c.organization_id, {day}, coalesce(l.amplifier_id, 0) "
        "ON CONFLICT (organization_id, day, amplifier_id) DO UPDATE SET "
        f"{add('amplifier_days', counts)}"
    )
    return engagement, campaign_hours, amplifier_days


def downgrade() -> None:
    with op.batch_alter_table("amplifiers", schema=None) as batch_op:
        batch_op.drop_index("ix_amplifiers_org_updated")
    with op.batch_alter_table("engagement", schema=None) as batch_op:
        batch_op.drop_index("ix_engagement_org_first_shared")
        batch_op.drop_index("ix_engagement_message")
        batch_op.drop_index("ix_engagement_amplifier")

    op.drop_table("engagement")
    op.drop_table("campaign_hours")
    op.drop_table("cost_per_click")
    op.drop_table("amplifier_days")
