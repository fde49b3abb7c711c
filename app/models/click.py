from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Date, ForeignKey, Index, Integer, LargeBinary, String
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime

# SQLite only auto-increments an INTEGER PRIMARY KEY.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class Click(Base):
    """One GET of /r/{code}. No raw IP: the visitor is a keyed hash of (ip, agent, day)."""

    __tablename__ = "clicks"
    __table_args__ = (
        Index("ix_clicks_link_at", "link_id", "at"),
        Index("ix_clicks_at", "at"),
        Index("ix_clicks_burst", "delivery_id", "visitor_key", "at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    link_id: Mapped[int] = mapped_column(ForeignKey("links.id", ondelete="CASCADE"))
    # Denormalized from the link (no foreign key: this table takes the hottest inserts).
    delivery_id: Mapped[int | None] = mapped_column(Integer)
    kind: Mapped[str | None] = mapped_column(String(8))
    at: Mapped[datetime] = mapped_column(UTCDateTime)
    is_bot: Mapped[bool] = mapped_column(Boolean, default=False)
    bot_reason: Mapped[str | None] = mapped_column(String(32))
    visitor_key: Mapped[str | None] = mapped_column(String(32))
    ua_class: Mapped[str | None] = mapped_column(String(16))
    referrer_host: Mapped[str | None] = mapped_column(String(255))


class ClickRollup(Base):
    """Per link and hour: human clicks, bot clicks, and visitors first seen that hour that day.
    Written in the same transaction as the clicks; stats read these, never raw clicks."""

    __tablename__ = "click_rollups"
    __table_args__ = ({"sqlite_with_rowid": False},)  # SQLite: one b-tree, kept in key order

    link_id: Mapped[int] = mapped_column(
        ForeignKey("links.id", ondelete="CASCADE"), primary_key=True
    )
    hour: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    clicks: Mapped[int] = mapped_column(Integer, default=0)
    bot_clicks: Mapped[int] = mapped_column(Integer, default=0)
    unique_visitors: Mapped[int] = mapped_column(Integer, default=0)


class LinkVisitor(Base):
    """The human visitors of a link per UTC day (what makes `unique_visitors` exact)."""

    __tablename__ = "link_visitors"
    __table_args__ = ({"sqlite_with_rowid": False},)

    link_id: Mapped[int] = mapped_column(
        ForeignKey("links.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    visitor_key: Mapped[str] = mapped_column(String(32), primary_key=True)
    # The rollup hour this visitor was counted in, to uncount it if its clicks turn out bots.
    hour: Mapped[datetime] = mapped_column(UTCDateTime)


class VisitorSalt(Base):
    """A random salt per UTC day for visitor keys; deleted after a day, so old keys can no
    longer be linked to an address."""

    __tablename__ = "visitor_salts"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    salt: Mapped[bytes] = mapped_column(LargeBinary(32))
