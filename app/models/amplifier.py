from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, JSONType, UTCDateTime, utcnow


class AmplifierStatus(StrEnum):
    ACTIVE = "active"
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"


class Frequency(StrEnum):
    EACH = "each"  # a digest per campaign, as it is sent
    DAILY = "daily"
    WEEKLY = "weekly"


class Amplifier(Base):
    __tablename__ = "amplifiers"
    __table_args__ = (
        UniqueConstraint("organization_id", "email_key"),
        Index("ix_amplifiers_org_status", "organization_id", "status"),
        # The newest change in a roster: part of the statistics' cache key (reach, names).
        Index("ix_amplifiers_org_updated", "organization_id", "updated_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    organization_id: Mapped[int] = mapped_column(ForeignKey("organizations.id", ondelete="CASCADE"))
    email: Mapped[str] = mapped_column(String(320))
    # Lower-cased address: the identity for uniqueness and upserts.
    email_key: Mapped[str] = mapped_column(String(320))
    name: Mapped[str | None] = mapped_column(String(200))
    tags: Mapped[list[str]] = mapped_column(JSONType, default=list)
    networks: Mapped[list[str]] = mapped_column(JSONType, default=list)
    audience: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    locale: Mapped[str] = mapped_column(String(16), default="en")
    status: Mapped[str] = mapped_column(String(16), default=AmplifierStatus.ACTIVE)
    frequency: Mapped[str] = mapped_column(
        String(8), default=Frequency.EACH, server_default=Frequency.EACH.value
    )
    paused_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # IANA name; None = the organization's default time zone
    timezone: Mapped[str | None] = mapped_column(String(64))
    # Why the status is not active when it was not the amplifier's own click: `complaint`,
    # `hard_bounce`, `soft_bounces`.
    status_reason: Mapped[str | None] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
