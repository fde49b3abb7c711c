from datetime import datetime

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime

# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Click(Base):
    """One request to /r/{code}. No raw IP: the visitor is a keyed hash of (ip, agent, day)."""

    __tablename__ = "clicks"
    __table_args__ = (Index("ix_clicks_link_at", "link_id", "at"), Index("ix_clicks_at", "at"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("links.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    is_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    bot_reason: Mapped[str | None] = mapped_column(String(32))
    visitor_key: Mapped[str | None] = mapped_column(String(32))
    ua_class: Mapped[str | None] = mapped_column(String(16))
    referrer_host: Mapped[str | None] = mapped_column(String(255))
