"""Statistics rollups, kept up to date in the transaction that stores the clicks (see
app/tracking/clickstore.py), so every dashboard read is a small indexed aggregate.

Counts are human unless named `bot_*`; `unique_visitors` counts visit-link visitors (one per link
and UTC day). A deleted amplifier's rows keep their numbers under amplifier id 0.
"""

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import Date, ForeignKey, Index, Integer, Numeric, String
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
