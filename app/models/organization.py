from datetime import datetime

from sqlalchemy import Boolean, Integer, String, false, true
from sqlalchemy.orm import Mapped, mapped_column

from app.core.db import Base, UTCDateTime, utcnow


class Organization(Base):
    __tablename__ = "organizations"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Sending settings: the impact block in digests, names on the my-impact page's top 10
    show_impact: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    public_leaderboard: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Preferences: the weekly cap (None: none), the daily and weekly slots, the default zone
    max_digests_per_week: Mapped[int | None] = mapped_column(Integer)
    daily_at: Mapped[str] = mapped_column(String(5), default="09:00", server_default="09:00")
    weekly_on: Mapped[str] = mapped_column(String(9), default="monday", server_default="monday")
    default_timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    # Amplifiers ever deleted, counted by a database trigger (migration 0009): a deletion
    # leaves no row to date it, and statistics' cache versions must see it without counting
    # the roster.
    roster_deletions: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
