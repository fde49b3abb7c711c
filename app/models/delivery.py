from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime, utcnow


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    FAILED = "failed"
    CANCELLED = "cancelled"
    BOUNCED = "bounced"  # accepted, then a bounce came back for it
    # Waiting for the amplifier's slot (daily/weekly digest, a pause, the weekly cap): released
    # at `due_at` with the amplifier's other due held deliveries as one combined digest.
    HELD = "held"


class Delivery(Base):
    """One digest for one amplifier of one campaign: the unit the worker claims and sends."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("campaign_id", "amplifier_id"),
        Index("ix_deliveries_claim", "status", "next_attempt_at"),
        Index("ix_deliveries_campaign_status", "campaign_id", "status"),
        # A campaign's newest delivery change in one index probe (statistics' freshness).
        Index("ix_deliveries_campaign_updated", "campaign_id", "updated_at"),
        # Bounces that carry no return-path token are matched by the Message-ID they quote.
        Index("ix_deliveries_message_id", "message_id"),
        # Held deliveries of one amplifier are released together.
        Index("ix_deliveries_amplifier_status", "amplifier_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    # SET NULL: deleting an amplifier keeps the campaign's history and aggregates.
    amplifier_id: Mapped[int | None] = mapped_column(
        ForeignKey("amplifiers.id", ondelete="SET NULL")
    )
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    lease_owner: Mapped[str | None] = mapped_column(String(64))
    lease_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    message_id: Mapped[str | None] = mapped_column(String(255))
    # Set when the delivery was held: the slot it goes out at as part of a combined digest
    # (it stays set, so a combined digest's retry is sent combined again).
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the status last changed: the error threshold only looks at outcomes since a resume.
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class DeliveryCount(Base):
    """A campaign's deliveries in one status. Kept by database triggers on `deliveries`
    (migration 0009) at every insert, status change and delete, whatever code writes them:
    campaign statistics read a handful of rows instead of counting the roster's deliveries."""

    __tablename__ = "delivery_counts"
    __table_args__ = ({"sqlite_with_rowid": False},)

    campaign_id: Mapped[int] = mapped_column(
        ForeignKey("campaigns.id", ondelete="CASCADE"), primary_key=True
    )
    status: Mapped[str] = mapped_column(String(16), primary_key=True)
    deliveries: Mapped[int] = mapped_column(Integer, default=0)
