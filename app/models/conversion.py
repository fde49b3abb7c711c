"""Conversion attribution: the click ids handed to landing pages and the conversions reported
against them (see app/tracking/clickids.py and app/conversions/)."""

from datetime import datetime
from decimal import Decimal

from sqlalchemy import ForeignKey, Index, Integer, Numeric, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime, utcnow
from app.models.click import BigId


class ClickId(Base):
    """A human visit click that carried a click id: written with the click in the recorder's
    batch and kept for the attribution window, past the raw click's own retention, since a
    conversion needs only the link (amplifier × message × network) and the moment."""

    __tablename__ = "click_ids"
    __table_args__ = (Index("ix_click_ids_at", "at"),)

    key: Mapped[str] = mapped_column(String(22), primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("links.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)


class Conversion(Base):
    """A signup, sale … reported against a click id, with the click's link facts copied in so
    that it survives the click id's purge. `link_id` names the visit link (and through it the
    copy variant the visitor saw)."""

    __tablename__ = "conversions"
    __table_args__ = (
        UniqueConstraint("organization_id", "external_id"),
        Index("ix_conversions_campaign", "campaign_id"),
        Index("ix_conversions_organization_occurred", "organization_id", "occurred_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    click_id: Mapped[str] = mapped_column(String(32))
    event: Mapped[str] = mapped_column(String(64))
    value: Mapped[Decimal | None] = mapped_column(Numeric(18, 4))
    currency: Mapped[str] = mapped_column(String(3))
    external_id: Mapped[str | None] = mapped_column(String(200))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("campaigns.id", ondelete="CASCADE"))
    message_id: Mapped[int] = mapped_column(Integer)
    amplifier_id: Mapped[int | None] = mapped_column(Integer)
    network: Mapped[str] = mapped_column(String(16))
    link_id: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
