from datetime import datetime
from enum import StrEnum

from sqlalchemy import ForeignKey, Index, SmallInteger, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime, utcnow


class LinkKind(StrEnum):
    SHARE = "share"
    VISIT = "visit"


class Link(Base):
    """A tracked shortlink; immutable once created, so lookups may be cached forever."""

    __tablename__ = "links"
    __table_args__ = (
        Index("ix_links_campaign", "campaign_id"),
        Index("ix_links_delivery", "delivery_id"),
        Index("ix_links_amplifier", "amplifier_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(8))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(ForeignKey("messages.id", ondelete="CASCADE"))
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"))
    amplifier_id: Mapped[int | None] = mapped_column(
        ForeignKey("amplifiers.id", ondelete="SET NULL")
    )
    network: Mapped[str] = mapped_column(String(16))
    # The message's copy variant this amplifier got (0: the base text), fixed at the snapshot.
    variant: Mapped[int] = mapped_column(SmallInteger, default=0, server_default="0")
    target: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
