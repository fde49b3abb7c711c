from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime, utcnow


class BounceKind(StrEnum):
    HARD = "hard"
    SOFT = "soft"
    COMPLAINT = "complaint"


class BounceEvent(Base):
    """A bounce or complaint that came back after the SMTP session (a DSN, an ARF report or a
    provider's callback), kept for the soft-bounce count and so a repeat changes nothing."""

    __tablename__ = "bounce_events"
    __table_args__ = (
        UniqueConstraint("event_key"),
        Index("ix_bounce_events_amplifier_kind", "amplifier_id", "kind", "created_at"),
        Index("ix_bounce_events_campaign_kind", "campaign_id", "kind"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # The source and its own event id, or a digest of the report: a repeat is a no-op.
    event_key: Mapped[str] = mapped_column(String(160))
    source: Mapped[str] = mapped_column(String(16))
    kind: Mapped[str] = mapped_column(String(16))
    delivery_id: Mapped[int | None] = mapped_column(
        ForeignKey("deliveries.id", ondelete="SET NULL")
    )
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    amplifier_id: Mapped[int | None] = mapped_column(
        ForeignKey("amplifiers.id", ondelete="SET NULL")
    )
    status: Mapped[str | None] = mapped_column(String(16))
    detail: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
