"""Statistics rollups, kept up to date in the transaction that stores the clicks (see
app/tracking/clickstore.py), so every dashboard read is a small indexed aggregate.

Counts are human unless named `bot_*`; `unique_visitors` counts visit-link visitors (one per link
and UTC day). `conversions` and `conversion_value` (the organization's currency) are added by
each conversion reported (app/conversions/rollups.py), in the hour and day it occurred. A
deleted amplifier's rows keep their numbers under amplifier id 0.
"""

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    SmallInteger,
    String,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime, utcnow


class Engagement(Base):
    """One amplifier's numbers for one message on one network (all time)."""

    __tablename__ = "engagement"
    __table_args__ = (
        Index("ix_engagement_amplifier", "amplifier_id"),
        Index("ix_engagement_message", "message_id"),
        Index("ix_engagement_org_first_shared", "organization_id", "first_shared_at"),
        # SQLite: rows stored in key order, so a campaign's rows are read in one sweep.
        {"sqlite_with_rowid": False},
    )

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    amplifier_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    message_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    network: Mapped[str] = mapped_column(String(16), primary_key=True)
    organization_id: Mapped[int] = mapped_column(Integer)
    share_clicks: Mapped[int] = mapped_column(Integer, default=0)
    visits: Mapped[int] = mapped_column(Integer, default=0)
    unique_visitors: Mapped[int] = mapped_column(Integer, default=0)
    conversions: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    conversion_value: Mapped[Decimal] = mapped_column(Numeric(18, 4), default=0, server_default="0")
    bot_clicks: Mapped[int] = mapped_column(Integer, default=0)
    # The hour of the first human share click (None while there is none): points are earned then.
    first_shared_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class CampaignHour(Base):
    """A campaign's numbers per UTC hour: time series."""

    __tablename__ = "campaign_hours"
    __table_args__ = ({"sqlite_with_rowid": False},)

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    share_clicks: Mapped[int] = mapped_column(Integer, default=0)
    visits: Mapped[int] = mapped_column(Integer, default=0)
    unique_visitors: Mapped[int] = mapped_column(Integer, default=0)
    conversions: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    conversion_value: Mapped[Decimal] = mapped_column(Numeric(18, 4), default=0, server_default="0")
    bot_clicks: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class AmplifierDay(Base):
    """An amplifier's numbers per UTC day across campaigns: leaderboards over a period."""

    __tablename__ = "amplifier_days"
    __table_args__ = ({"sqlite_with_rowid": False},)

    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    amplifier_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    share_clicks: Mapped[int] = mapped_column(Integer, default=0)
    visits: Mapped[int] = mapped_column(Integer, default=0)
    unique_visitors: Mapped[int] = mapped_column(Integer, default=0)
    conversions: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    conversion_value: Mapped[Decimal] = mapped_column(Numeric(18, 4), default=0, server_default="0")
    # (campaign, message, network) first shared that day: their share points are earned then.
    first_shares: Mapped[int] = mapped_column(Integer, default=0)
    points: Mapped[int] = mapped_column(Integer, default=0)


# --- counters: what a dashboard reads, kept by the click flush (app/tracking/counters.py) ---
# Each is the sum of engagement rows kept up to date alongside them, so a read costs
# O(messages × networks) or O(limit) rows whatever the roster size. A sharer is counted the
# moment its first human share lands and uncounted if a burst takes every one of them back.


class CampaignCount(Base):
    """A campaign's numbers per message × network, like GROUPING SETS: message 0 stands for
    every message and network '' for every network. Click counts live on the (message,
    network) rows; `sharers` on every row (distinct amplifiers with a human share in that
    group); `potential_reach` on the (0, network) rows: Σ the network's sharers' audience."""

    __tablename__ = "campaign_counts"
    __table_args__ = ({"sqlite_with_rowid": False},)

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    message_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    network: Mapped[str] = mapped_column(String(16), primary_key=True)
    share_clicks: Mapped[int] = mapped_column(Integer, default=0)
    visits: Mapped[int] = mapped_column(Integer, default=0)
    unique_visitors: Mapped[int] = mapped_column(Integer, default=0)
    conversions: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    conversion_value: Mapped[Decimal] = mapped_column(Numeric(18, 4), default=0, server_default="0")
    bot_clicks: Mapped[int] = mapped_column(Integer, default=0)
    sharers: Mapped[int] = mapped_column(Integer, default=0)
    potential_reach: Mapped[int] = mapped_column(BigInteger, default=0)


class VariantCount(Base):
    """A message's numbers per copy variant (0: the base text). `recipients` is set when the
    campaign's snapshot assigns the variants; the click flush adds the rest, `sharers` being
    the amplifiers who became sharers of the message (each has one variant per message)."""

    __tablename__ = "variant_counts"
    __table_args__ = ({"sqlite_with_rowid": False},)

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    message_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    variant: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    recipients: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    share_clicks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    visits: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    unique_visitors: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    bot_clicks: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    sharers: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    conversions: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    conversion_value: Mapped[Decimal] = mapped_column(Numeric(18, 4), default=0, server_default="0")


class CampaignAmplifier(Base):
    """One amplifier's totals and points in one campaign (points: 10 per (message, network)
    shared, 1 per unique visitor), read in points order for the campaign's amplifier page."""

    __tablename__ = "campaign_amplifiers"
    __table_args__ = (
        Index("ix_campaign_amplifiers_amplifier", "amplifier_id"),
        {"sqlite_with_rowid": False},
    )

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    amplifier_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    share_clicks: Mapped[int] = mapped_column(Integer, default=0)
    visits: Mapped[int] = mapped_column(Integer, default=0)
    unique_visitors: Mapped[int] = mapped_column(Integer, default=0)
    conversions: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    conversion_value: Mapped[Decimal] = mapped_column(Numeric(18, 4), default=0, server_default="0")
    bot_clicks: Mapped[int] = mapped_column(Integer, default=0)
    shared_pairs: Mapped[int] = mapped_column(Integer, default=0)
    points: Mapped[int] = mapped_column(Integer, default=0)


class AmplifierTotal(Base):
    """An amplifier's all-time totals and points across campaigns: the all-time leaderboard,
    read in points order."""

    __tablename__ = "amplifier_totals"
    __table_args__ = ({"sqlite_with_rowid": False},)

    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    amplifier_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    share_clicks: Mapped[int] = mapped_column(Integer, default=0)
    visits: Mapped[int] = mapped_column(Integer, default=0)
    unique_visitors: Mapped[int] = mapped_column(Integer, default=0)
    conversions: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    conversion_value: Mapped[Decimal] = mapped_column(Numeric(18, 4), default=0, server_default="0")
    points: Mapped[int] = mapped_column(Integer, default=0)


# Read in the answers' order (points descending, then amplifier id): O(limit) index reads.
Index(
    "ix_amplifier_days_points",
    AmplifierDay.organization_id,
    AmplifierDay.day,
    AmplifierDay.points.desc(),
    AmplifierDay.amplifier_id,
)
Index(
    "ix_campaign_amplifiers_points",
    CampaignAmplifier.campaign_id,
    CampaignAmplifier.points.desc(),
    CampaignAmplifier.amplifier_id,
)
Index(
    "ix_amplifier_totals_points",
    AmplifierTotal.organization_id,
    AmplifierTotal.points.desc(),
    AmplifierTotal.amplifier_id,
)


class MessageSharer(Base):
    """How many networks an amplifier shared a message on (> 0: a sharer of the message)."""

    __tablename__ = "message_sharers"
    __table_args__ = ({"sqlite_with_rowid": False},)

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    message_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    amplifier_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shared: Mapped[int] = mapped_column(Integer, default=0)


class NetworkSharer(Base):
    """How many messages an amplifier shared on a network (> 0: a sharer on the network), and
    their current audience there (kept current by roster changes): the potential reach."""

    __tablename__ = "network_sharers"
    __table_args__ = (
        Index("ix_network_sharers_amplifier", "amplifier_id"),
        {"sqlite_with_rowid": False},
    )

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    network: Mapped[str] = mapped_column(String(16), primary_key=True)
    amplifier_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    shared: Mapped[int] = mapped_column(Integer, default=0)
    audience: Mapped[int] = mapped_column(BigInteger, default=0)


class CostPerClick(Base):
    """An organization's cost-per-click for a network (EMV); absent rows use the defaults."""

    __tablename__ = "cost_per_click"

    organization_id: Mapped[int] = mapped_column(
        ForeignKey("organizations.id", ondelete="CASCADE"), primary_key=True
    )
    network: Mapped[str] = mapped_column(String(16), primary_key=True)
    amount: Mapped[Decimal] = mapped_column(Numeric(12, 4))
    currency: Mapped[str] = mapped_column(String(3))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
